"""Where a queued task stands: its place in the fair queue, and when it should start."""

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis
from celery import states
from django.conf import settings

from fairqueue.estimates import start_estimate
from fairqueue.queue import Place
from pqh_site.core import core

from ..models import TaskRecord

logger = logging.getLogger(__name__)


def task_places(
    records: Iterable[TaskRecord], *, now: float | None = None
) -> dict[Any, Place | None]:
    """Return {task id: Place (queue position, aged)} for many tasks, in one Redis round trip.

    A position is the number of tasks that start before this one if no more tasks arrive and
    none reaches the aging bound in the meantime: it counts the weighted interleaving within a
    level, the aged tasks and the tasks released to the broker and not yet started exactly,
    from the fair queue's own sets, in O(log n) per task plus a constant (docs/fairness.md,
    "Queue position"); queued tasks never share one. `aged` says whether aging has lifted the task. None
    for a task that is not queued, when the fairness policy is off (the broker's FIFO list has
    no ranks), or if Redis cannot be reached.
    """
    records = list(records)
    places: dict = {record.pk: None for record in records}
    queued = [r for r in records if r.status == states.PENDING]
    if not queued or not settings.PQH_FAIRNESS:
        return places
    try:
        answers = core().queue.places([(str(r.pk), r.queue_seq, r.level) for r in queued], now=now)
    except redis.RedisError:
        logger.warning("queue positions unavailable: Redis cannot be reached")
        return places
    places.update(zip((r.pk for r in queued), answers, strict=True))
    return places


def task_place(record: TaskRecord) -> Place | None:
    """Return the place of one task (see task_places); None if it is not queued."""
    if record.position_at_submit is not None and record.status == states.PENDING:
        # What the fair queue said when it took the task: a task just queued is not aged.
        return Place(position=record.position_at_submit, aged=False)
    return task_places([record])[record.pk]


# The start estimate uses the mean run time of this many recently finished tasks.
RECENT_RUNS = 20


def runs_and_running(
    *, now: float, limit: int = RECENT_RUNS
) -> tuple[list[tuple[float, float]], list[float]]:
    """Return (started, finished) epoch seconds of the last `limit` finished tasks, and the start
    of each task running now, in one query (a UNION ALL of the two reads)."""
    recent = (
        TaskRecord.objects.filter(
            finished_at__isnull=False,
            started_at__isnull=False,
            status__in=[states.SUCCESS, states.FAILURE],
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:limit]
    )
    # A STARTED row older than the hard time limit belongs to a worker that vanished.
    alive_since = datetime.fromtimestamp(now - settings.PQH_TASK_TIME_LIMIT - 30, tz=UTC)
    running = (
        TaskRecord.objects.filter(
            status=states.STARTED, started_at__gte=alive_since, finished_at__isnull=True
        )
        .order_by()
        .values_list("started_at", "finished_at")
    )
    runs, running_since = [], []
    for started, finished in recent.union(running, all=True):
        if finished is None:
            running_since.append(started.timestamp())
        else:
            runs.append((started.timestamp(), finished.timestamp()))
    return runs, running_since


def task_start_estimate(
    record: TaskRecord, *, position: int | None = None, now: float | None = None
) -> datetime | None:
    """Return when a queued task should start, or None (not queued, or no position).

    From its position, the tasks running now, the mean run time of the last RECENT_RUNS finished
    tasks (PQH_TASK_SECONDS before any has finished) and the slots seen in use
    (estimates.start_estimate says how). One query.
    """
    if record.status != states.PENDING:
        return None
    if position is None:
        place = task_place(record)
        position = None if place is None else place.position
    if position is None:
        return None
    now = time.time() if now is None else now
    runs, running_since = runs_and_running(now=now)
    start = start_estimate(
        position=position,
        running_since=running_since,
        runs=runs,
        default_run=float(settings.PQH_TASK_SECONDS),
        now=now,
    )
    return datetime.fromtimestamp(start, tz=UTC)
