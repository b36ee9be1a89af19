"""Stopping a worker calmly: a few lines, and every task it was running runs again later.

`make run`'s Ctrl-C, honcho, docker stop and systemd all send SIGTERM to the worker's whole
process group: the main process begins Celery's warm shutdown, and its pool processes, which
get the signal too, stop at once. Each task they were running is handed back to its queue
(task_reject_on_worker_lost with late acknowledgement) and its row stays STARTED; the next
worker to take it takes the row over (services.runs.task_claim, redelivered) and runs it
again, once. Celery and billiard log each lost pool process as an error with two tracebacks,
which reads like a crash: while the worker is stopping, those records are replaced by one line
that says what happened to each task.
"""

import logging

from celery.signals import worker_init, worker_shutting_down
from celery.worker import state

logger = logging.getLogger("pqh.events")

_stopping = False

# Loggers whose records of a pool process stopped by the shutdown signal are noise then.
_NOISY = ("celery.worker.request", "multiprocessing", "celery.concurrency.asynpool")


class StoppingNoise(logging.Filter):
    """While the worker stops, drop the lost-pool-process errors of the signal that stops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _stopping:
            return True
        message = record.getMessage()
        return not (
            "WorkerLostError" in message
            or ("exited with" in message and "signal" in message)
            or "Worker exited prematurely" in message
        )


def _install_filter(**kwargs) -> None:
    for name in _NOISY:
        logging.getLogger(name).addFilter(StoppingNoise())


def _stopping_now(sig: str = "", how: str = "", **kwargs) -> None:
    global _stopping
    _stopping = True
    running = sorted(request.id for request in list(state.active_requests))
    logger.info(
        "worker_stopping",
        extra={
            "signal": sig,
            "shutdown": how.lower(),
            "running": len(running),
            "tasks": ",".join(running),
            "then": "each running task goes back to its queue and runs again when a worker starts"
            if running
            else "no task was running",
        },
    )


def connect_signals() -> None:
    """From the app's ready(): a worker calls it before it starts."""
    worker_init.connect(_install_filter, dispatch_uid="pqh-shutdown-filter", weak=False)
    worker_shutting_down.connect(_stopping_now, dispatch_uid="pqh-shutdown-line", weak=False)
