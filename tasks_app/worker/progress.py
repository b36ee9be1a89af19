"""Progress of a running task: the intensive callable reports it, Celery's PROGRESS state keeps it.

The callable stays free of Celery: PQH_TASK_CALLABLE may take a keyword argument `progress`,
a plain function `progress(fraction, message="")`. pqh passes one that stores
`{"fraction", "message", "updated_at"}` as the task's custom state PROGRESS (Celery's
`update_state`, stored by django-celery-results), at most every PQH_PROGRESS_INTERVAL seconds.
"""

import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger(__name__)

PROGRESS = "PROGRESS"
MESSAGE_LIMIT = 200


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> None: ...


def accepts_progress(func: Callable[..., Any]) -> bool:
    """True if `func` takes a `progress` keyword argument (or any keyword argument)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "progress" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in parameters
    )


def call_with_progress(func: Callable[..., Any], x: Any, progress: Progress | None) -> Any:
    """Call `func(x)`, passing `progress` too when there is one and `func` takes it."""
    if progress is not None and accepts_progress(func):
        return func(x, progress=progress)
    return func(x)


class ProgressReporter:
    """A `progress` function that stores each report, at most once per `interval` seconds.

    A report that comes sooner than `interval` after the start or the last stored one is
    dropped, except a final one (fraction 1), so a callable may report as often as it likes and
    a task shorter than `interval` costs no write. Storing is best effort: a failed write is
    logged and the work goes on.
    """

    def __init__(
        self,
        store: Callable[[dict[str, Any]], None],
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.interval = interval
        self.clock = clock
        self.wall_clock = wall_clock
        self.last = clock()

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        now = self.clock()
        if now - self.last < self.interval and fraction < 1.0:
            return
        self.last = now
        meta = {
            "fraction": round(fraction, 4),
            "message": str(message)[:MESSAGE_LIMIT],
            "updated_at": round(self.wall_clock(), 3),
        }
        try:
            self.store(meta)
        except Exception:
            logger.warning("storing the progress of a task failed", exc_info=True)
