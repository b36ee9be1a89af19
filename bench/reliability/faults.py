"""The faults, injected one after the other during the submissions (bench/README.md, "Faults").

Each returns what it found and when it ran (seconds since the load started), for the JSON's
`faults`; one that raises is recorded with its error, and the `every_fault_injected` check fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .scenario import FAULT_AT

if TYPE_CHECKING:
    from .runner import Run


def fault_kill(run: Run) -> dict[str, Any]:
    """SIGKILL the first worker host's whole process group mid-task, and start it again."""
    host = run.hosts[0]
    # Mid-task: wait (a few seconds at most) until the host is running something.
    deadline = time.monotonic() + 5
    while (running := run.started_on(host)) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    start = run.now()
    run.procs.kill(host)
    run.start_host(host)
    return {"host": host, "tasks_running_on_it": running, "start": start, "end": run.now()}


def fault_db(run: Run) -> dict[str, Any]:
    """Cut the workers' proxy to PostgreSQL for --db-outage seconds; the web still reaches it."""
    running = run.started_on()
    start = run.now()
    run.proxy.cut()
    time.sleep(run.args.db_outage)
    run.proxy.restore()
    return {"tasks_running": running, "start": start, "end": run.now()}


def fault_redis(run: Run) -> dict[str, Any]:
    """Kill the private Redis and start it again empty after --redis-down seconds."""
    from pqh_site.core import core

    waiting = None
    with contextlib.suppress(Exception):
        waiting = core().queue.waiting_count()
    start = run.now()
    run.redis.restart_empty(down_seconds=run.args.redis_down)
    return {"tasks_waiting_lost": waiting, "start": start, "end": run.now()}


FAULT_STEPS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "kill": fault_kill,
    "db": fault_db,
    "redis": fault_redis,
}


def inject(run: Run, phase: float) -> None:
    """Run the chosen faults in order, each at its FAULT_AT fraction of the submission phase.

    The body of the injector thread: it restarts a killed host, and a process started with
    PR_SET_PDEATHSIG gets its SIGTERM when the thread that forked it ends, so the thread waits
    for the run to be over before it returns.
    """
    try:
        for name in run.args.faults:
            at = FAULT_AT[name] * phase
            while run.now() < at and not run.over.is_set():
                time.sleep(0.05)
            if run.over.is_set():
                return
            print(f"  {run.now():6.1f} s  fault: {name}", flush=True)
            try:
                info = FAULT_STEPS[name](run)
            except Exception as exc:  # recorded, and the checks fail on it
                info = {"error": f"{type(exc).__name__}: {exc}", "start": at, "end": run.now()}
            info["start"], info["end"] = round(info["start"], 2), round(info["end"], 2)
            run.faults.append({"fault": name, **info})
    finally:
        run.faults_done.set()
    run.over.wait()  # keeps what this thread started alive
