"""Events of a task's life: one structured log line and the Prometheus counts for each.

Submissions, refusals, starts and finishes are logged and counted here and nowhere else. Each
function only formats a line and increments in-process counters: no network round trip, so
calling them on the submission path costs nothing measurable.
"""

import logging
from typing import Any

from ..models import TaskRecord
from . import metrics

logger = logging.getLogger("pqh.events")


def _username(user) -> str:
    return "" if user is None else user.get_username()


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _emit(event: str, **fields: Any) -> None:
    # The message is the event's name; the fields go to the formatter as `extra`, so the JSON
    # and key=value formats carry the same keys.
    logger.info(event, extra=fields)


def event_submitted(record: TaskRecord, *, replayed: bool = False) -> None:
    """Log and count an accepted submission, or a repeated one answered with its first task."""
    if replayed:
        metrics.REPLAYS.inc()
    else:
        metrics.SUBMISSIONS.labels(level=str(record.level)).inc()
    _emit(
        "submitted",
        task_id=str(record.pk),
        user=_username(record.user),
        level=record.level,
        weight=record.weight,
        team=record.team or None,
        team_weight=record.team_weight,
        count_before=record.count_before,
        replayed=replayed,
    )


def event_refused(*, user, reason: str, detail: str = "") -> None:
    """Log and count a refused submission; `reason` is one of metrics.REFUSAL_REASONS."""
    if reason not in metrics.REFUSAL_REASONS:
        raise ValueError(f"unknown refusal reason {reason!r}")
    metrics.REFUSALS.labels(reason=reason).inc()
    _emit("refused", user=_username(user), reason=reason, detail=detail[:300])


def event_started(record: TaskRecord) -> None:
    """Log a task a worker has claimed, with how long it waited, and count its wait."""
    wait = record.wait_seconds()
    if wait is not None:
        metrics.TASK_WAIT.labels(level=str(record.level)).observe(max(wait, 0.0))
    _emit(
        "started",
        task_id=str(record.pk),
        user=_username(record.user),
        level=record.level,
        wait=_seconds(wait),
        aged=record.aged,
        worker=record.worker,
    )


def event_finished(record: TaskRecord) -> None:
    """Log a task that ended (SUCCESS or FAILURE), with its wait and run time, and count it."""
    run = None
    if record.started_at is not None and record.finished_at is not None:
        run = (record.finished_at - record.started_at).total_seconds()
        metrics.TASK_RUN.labels(status=record.status).observe(max(run, 0.0))
    _emit(
        "finished",
        task_id=str(record.pk),
        user=_username(record.user),
        level=record.level,
        status=record.status,
        wait=_seconds(record.wait_seconds()),
        run=_seconds(run),
        worker=record.worker,
    )
