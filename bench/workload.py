"""Work callables for the benchmarks: the task's length comes from its input.

The service's default work (`tasks_app.work.limited_f`) sleeps PQH_TASK_SECONDS, the same for
every task. Scenarios S6 and S6b of bench.fairness need tasks of different lengths, so their
worker runs with

    PQH_TASK_CALLABLE=bench.workload.sleep_for

(the dotted path `django.utils.module_loading.import_string` takes; the worker runs with the
project root on PYTHONPATH, so `bench` is importable) and every submission carries its length:
`{"seconds": 0.1, ...}`.
"""

from __future__ import annotations

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
