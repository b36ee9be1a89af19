"""Work callables for the benchmarks' workers, each named by its dotted path in PQH_TASK_CALLABLE.

The dotted path is what `django.utils.module_loading.import_string` takes; the workers run with
the project root on PYTHONPATH, so `bench` is importable.

- `sleep_for` (bench.fairness, S6 and S6b): the task's length comes from its input. The
  service's default work (`tasks_app.worker.work.limited_f`) sleeps PQH_TASK_SECONDS, the same for
  every task; S6 and S6b need tasks of different lengths, so every submission carries its
  length: `{"seconds": 0.1, ...}`.
- `sleep_and_log` (bench.reliability): sleeps PQH_TASK_SECONDS, logs every completed run so that
  the benchmark can count how often each task's work ran, and fails when the submission asks.
"""

from __future__ import annotations

import os
import time
from typing import Any


def sleep_for(x: Any) -> dict[str, Any]:
    """Sleep `x["seconds"]` seconds (PQH_TASK_SECONDS if absent); say when it ran.

    Returns the same two timestamps as `limited_f` (`init_timestamp`, `done_timestamp`), so
    the benchmark reads the time spent in the work from the stored result, whichever callable
    ran, plus the length asked for.
    """
    seconds = x.get("seconds") if isinstance(x, dict) else None
    if seconds is None:
        from django.conf import settings

        seconds = settings.PQH_TASK_SECONDS
    seconds = max(0.0, float(seconds))
    init = time.time()
    start = time.monotonic()
    time.sleep(seconds)
    done = time.time()
    return {
        "init_timestamp": init,
        "done_timestamp": done,
        "seconds": seconds,
        "slept": time.monotonic() - start,
    }


def sleep_and_log(x: Any) -> dict[str, Any]:
    """Sleep PQH_TASK_SECONDS, log the run, and fail if `x["fail"]` says so.

    Every completed run appends one line, the submission's number `x["n"]`, to the file
    PQH_BENCH_RUN_LOG (O_APPEND: lines never mix), so the benchmark can count how many times
    each task's work ran to its end.
    """
    from django.conf import settings

    time.sleep(settings.PQH_TASK_SECONDS)
    n = x.get("n") if isinstance(x, dict) else None
    path = os.environ.get("PQH_BENCH_RUN_LOG")
    if path and n is not None:
        with open(path, "a") as log:
            log.write(f"{n}\n")
    if isinstance(x, dict) and x.get("fail"):
        raise ValueError(f"submission {n} asked to fail")
    return {"n": n}
