"""Reads: weights, a user's tasks, usage and queue statistics."""

import functools
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from celery import states
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count
from django_celery_results.models import TaskResult

from users_app.models import Profile

from . import scheduler
from .estimates import estimate_start, max_overlap
from .fairness import level0_at, level_for, level_for_usage, weighted_count
from .models import TaskRecord
from .progress import PROGRESS
from .window import window_active_users, window_usage

logger = logging.getLogger(__name__)


def user_weight(user) -> int:
    """Return the user's weight, creating its row (weight 1) if the user has none."""
    try:
        return user.profile.weight
    except Profile.DoesNotExist:
        profile, _ = Profile.objects.get_or_create(user=user)
        return profile.weight


def level_of(*, count_before: int, weight: int, usage: float | None = None) -> int:
    """Return the level the configured policy gives (0 for everyone when PQH_FAIRNESS is off).

    With PQH_CHARGE=time the window's `usage` (seconds charged) sets it, else the count.
    """
    if not settings.PQH_FAIRNESS:
        return 0
    if settings.PQH_CHARGE == "time":
        return level_for_usage(
            usage=count_before if usage is None else usage,
            weight=weight,
            bounds=settings.PQH_LEVEL_BOUNDS_SECONDS,
        )
    return level_for(count_before=count_before, weight=weight, bounds=settings.PQH_LEVEL_BOUNDS)


def task_list_for_user(user):
    """Return the user's tasks, newest first."""
    return TaskRecord.objects.for_user(user).order_by("-submitted_at")


def task_get_for_user(*, user, task_id) -> TaskRecord | None:
    """Return the user's task with this id, or None (also for another user's task)."""
    # No ORDER BY (.first() would add the model's): one row by its primary key.
    return next(iter(TaskRecord.objects.for_user(user).filter(pk=task_id).order_by()[:1]), None)


@dataclass(frozen=True)
class Poll:
    """What GET /result/<id> shows of a task: its state, its result once ended, its progress."""

    status: str
    result: Any = None
    progress: dict[str, Any] | None = None


@functools.cache
def _poll_sql() -> str:
    """The poll's one query, built once: the task row of this user, and its stored result
    (for a task that ended) or progress report (for a running one) joined in."""
    task, result = TaskRecord._meta, TaskResult._meta
    q = connection.ops.quote_name
    t_status, t_id = q(task.get_field("status").column), q(task.get_field("task_id").column)
    r_id = q(result.get_field("task_id").column)
    return (
        f"SELECT t.{t_status}, r.{q(result.get_field('status').column)}, "
        f"r.{q(result.get_field('result').column)} "
        f"FROM {q(task.db_table)} t LEFT JOIN {q(result.db_table)} r "
        f"ON t.{t_status} IN (%s, %s, %s) AND r.{r_id} = t.{t_id}::text "
        f"WHERE t.{t_id} = %s AND t.{q(task.get_field('user').column)} = %s"
    )


def task_poll_for_user(*, user, task_id) -> Poll | None:
    """Return the poll of the user's task with this id in ONE query, or None (also for another
    user's task). The same values as task_result_value and task_progress give for the record."""
    with connection.cursor() as cursor:
        cursor.execute(
            _poll_sql(), [states.SUCCESS, states.FAILURE, states.STARTED, task_id, user.pk]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    status, stored_status, stored = row
    if status in (states.SUCCESS, states.FAILURE):
        if stored is None:
            return Poll(status=status)
        value = json.loads(stored)
        return Poll(
            status=status, result=_failure_summary(value) if status == states.FAILURE else value
        )
    if status == states.STARTED and stored_status == PROGRESS and stored:
        meta = json.loads(stored)
        return Poll(status=status, progress=meta if isinstance(meta, dict) else None)
    return Poll(status=status)


# A failure's message as the owner sees it: the first line, at most this many characters.
ERROR_MESSAGE_CHARS = 300


def _failure_summary(value: Any) -> dict[str, str]:
    """Return the owner's view of a stored error: its type and a short message, nothing more.

    The stored result keeps what Celery encodes (exception type, module, arguments) and the
    traceback sits in its own column for operators; neither module nor traceback is shown.
    """
    if not isinstance(value, dict) or not value.get("exc_type"):
        return {"error": "Error", "message": "the task failed"}
    args = value.get("exc_message")
    if not isinstance(args, list | tuple):
        args = [] if args is None else [args]
    message = " ".join(map(str, args)).strip()
    first, *rest = message.splitlines() or [""]
    if rest or len(first) > ERROR_MESSAGE_CHARS:
        first = first[: ERROR_MESSAGE_CHARS - 1].rstrip() + "…"
    return {"error": str(value["exc_type"])[:100], "message": first}


def task_result_value(record: TaskRecord) -> Any:
    """Return the stored result of a finished task, or for a failure its type and message."""
    if record.status not in (states.SUCCESS, states.FAILURE):
        return None
    row = TaskResult.objects.filter(task_id=str(record.pk)).only("result").first()
    if row is None or row.result is None:
        return None
    value = json.loads(row.result)
    if record.status == states.FAILURE:
        return _failure_summary(value)
    return value


def task_places(
    records: Iterable[TaskRecord], *, now: float | None = None
) -> dict[Any, scheduler.Place | None]:
    """Return {task id: Place (queue position, aged)} for many tasks, in one Redis round trip.

    A position is the number of tasks that start before this one if no more tasks arrive and
    none reaches the aging bound in the meantime: it models the weighted interleaving within a
    level and the aged tasks exactly, from the fair queue's own sorted sets, in O(log n) per task
    (docs/fairness.md, "Queue position"); `aged` says whether aging has lifted the task. None
    for a task that is not queued, when the fairness policy is off (the broker's FIFO list has
    no ranks), or if Redis cannot be reached.
    """
    records = list(records)
    places: dict = {record.pk: None for record in records}
    queued = [r for r in records if r.status == states.PENDING]
    if not queued or not settings.PQH_FAIRNESS:
        return places
    try:
        answers = scheduler.queue_places(
            [(str(r.pk), r.queue_seq, r.level) for r in queued], now=now
        )
    except redis.RedisError:
        logger.warning("queue positions unavailable: Redis cannot be reached")
        return places
    places.update(zip((r.pk for r in queued), answers, strict=True))
    return places


def task_place(record: TaskRecord) -> scheduler.Place | None:
    """Return the place of one task (see task_places); None if it is not queued."""
    if record.position_at_submit is not None and record.status == states.PENDING:
        # What the fair queue said when it took the task: a task just queued is not aged.
        return scheduler.Place(position=record.position_at_submit, aged=False)
    return task_places([record])[record.pk]


def task_position(record: TaskRecord) -> int | None:
    """Return the queue position of one task (see task_places); None if it is not queued."""
    place = task_place(record)
    return None if place is None else place.position


# --- Why a task waits: its priority in words -------------------------------------------------


def charge_unit(charge: str) -> str:
    """Return the unit of a charge's usage: "tasks" (a count) or "seconds" (of service)."""
    return "seconds" if charge == "time" else "tasks"


def charge_bounds(charge: str) -> list[float]:
    """Return the level bounds in the unit of `charge` (PQH_LEVEL_BOUNDS[_SECONDS])."""
    if charge == "time":
        return [float(b) for b in settings.PQH_LEVEL_BOUNDS_SECONDS]
    return [int(b) for b in settings.PQH_LEVEL_BOUNDS]


def usage_per_weight(*, usage: float, weight: int, charge: str) -> float:
    """Return what the policy compares with the bounds: whole tasks per weight (the count
    floored by the weight) under tasks, seconds per weight under time."""
    if charge == "time":
        return usage / weight
    return weighted_count(int(usage), weight)


def _amount(value: float, charge: str) -> str:
    return f"{value:.1f} s" if charge == "time" else f"{int(value)}"


def priority_reason(
    *,
    level: int,
    charge: str,
    usage: float,
    weight: int,
    bounds: list[float],
    window_seconds: int,
    aged: bool,
    max_wait: float,
    fairness: bool = True,
) -> str:
    """Say in one sentence why a task has its level (and whether aging lifted it). Pure.

    E.g. "level 2: 7 tasks in the last 6000 s at weight 1 reach the bound 6 (level 0 needs
    fewer than 1)".
    """
    if not fairness:
        text = "level 0: the fairness policy is off (PQH_FAIRNESS), tasks start in arrival order"
    else:
        if charge == "time":
            what = f"{usage:.1f} s of service charged in the last {window_seconds} s"
            per = f"{usage / weight:.1f} s per weight"
            need = f"less than {bounds[0]:.1f} s per weight"
        else:
            what = (
                f"{int(usage)} task{'' if int(usage) == 1 else 's'} in the last {window_seconds} s"
            )
            per = f"{weighted_count(int(usage), weight)} per weight"
            need = f"fewer than {int(bounds[0])}"
        said = f"{what} at weight {weight}" + ("" if weight == 1 else f" = {per}")
        if level == 0:
            text = f"level 0: {said} stay below the bound {_amount(bounds[0], charge)} of level 1"
        else:
            reached = bounds[min(level, len(bounds)) - 1]
            text = (
                f"level {level}: {said} reach the bound {_amount(reached, charge)} "
                f"(level 0 needs {need})"
            )
    if aged:
        text += (
            f"; waiting longer than PQH_MAX_WAIT_SECONDS ({max_wait:g} s) lifted it ahead of "
            "every level"
        )
    return text


def task_priority(
    record: TaskRecord,
    *,
    place: scheduler.Place | None,
    estimated_start_at: str | None = None,
) -> dict[str, Any]:
    """Return why a task waits (the detail's "priority"): its level and the window usage that
    set it against the bounds, the weight, its cost, whether aging lifted it, its place.

    No I/O: the record and its `place` (task_place: read once, with the position) say it all.
    """
    charge = record.charge if record.charge in ("tasks", "time") else "tasks"
    # The count under tasks: usage_before equals it, and rows older than it only have the count.
    usage = float(record.usage_before) if charge == "time" else int(record.count_before)
    weight = max(int(record.weight), 1)
    bounds = charge_bounds(charge)
    aged = place.aged if place is not None else bool(record.aged)
    return {
        "level": record.level,
        "charge": charge,
        "usage_before": usage,
        "unit": charge_unit(charge),
        "weight": weight,
        "usage_per_weight": usage_per_weight(usage=usage, weight=weight, charge=charge),
        "bounds": bounds,
        "cost": float(record.cost),
        "run_seconds": None if record.run_seconds is None else float(record.run_seconds),
        "aged": aged,
        "position": None if place is None else place.position,
        "estimated_start_at": estimated_start_at,
        "reason": priority_reason(
            level=record.level,
            charge=charge,
            usage=usage,
            weight=weight,
            bounds=bounds,
            window_seconds=settings.PQH_WINDOW_SECONDS,
            aged=aged,
            max_wait=settings.PQH_MAX_WAIT_SECONDS,
            fairness=settings.PQH_FAIRNESS,
        ),
    }


def user_max_active(user) -> int:
    """Return how many tasks the user may have queued or running: its own cap, or the default."""
    try:
        cap = user.profile.max_active
    except Profile.DoesNotExist:
        cap = Profile.objects.filter(user=user).values_list("max_active", flat=True).first()
    return cap or settings.PQH_USER_MAX_ACTIVE


@dataclass(frozen=True)
class Usage:
    """A user's window as the policy reads it, and when it would let them back to level 0."""

    count: int
    usage: float  # the count under PQH_CHARGE=tasks, seconds charged under time
    unit: str  # "tasks" or "seconds"
    weight: int
    next_level: int
    bounds: list[float]
    level0_at: datetime | None  # None: already at level 0
    window_seconds: int
    charge: str = "tasks"


def usage_from_window(window, *, weight: int, now: float) -> Usage:
    """Return the Usage of a window_usage() answer for a user of `weight`. No I/O."""
    charge = settings.PQH_CHARGE
    usage = float(window.usage) if charge == "time" else int(window.count)
    at = None
    if settings.PQH_FAIRNESS:
        at = level0_at(
            entries=window.entries,
            weight=weight,
            bounds=charge_bounds(charge),
            window_seconds=settings.PQH_WINDOW_SECONDS,
            charge=charge,
            now=now,
        )
    return Usage(
        count=window.count,
        usage=usage,
        unit=charge_unit(charge),
        weight=weight,
        next_level=level_of(count_before=window.count, weight=weight, usage=window.usage),
        bounds=charge_bounds(charge),
        level0_at=None if at is None else datetime.fromtimestamp(at, tz=UTC),
        window_seconds=settings.PQH_WINDOW_SECONDS,
        charge=charge,
    )


def user_usage(user, *, now: float | None = None) -> Usage:
    """Return the user's window (count, and seconds under time), weight, the level their next
    task would get, and when they fall back to level 0 if they stop submitting now.

    One Redis round trip (window_usage).
    """
    now = time.time() if now is None else now
    window = window_usage(user_id=user.pk, now=now)
    return usage_from_window(window, weight=user_weight(user), now=now)


def windows_of(user_ids: Iterable[int], *, now: float) -> dict[int, Any]:
    """Return {user id: window_usage()} of users, for an operator's page (a round trip each)."""
    windows = {}
    for user_id in user_ids:
        window = window_usage(user_id=user_id, now=now)
        if window.count:
            windows[user_id] = window
    return windows


def queue_stats(*, now: float | None = None) -> dict[str, Any]:
    """Return, per level, the queued tasks, and per user with a live window: its count, usage
    (the count, or seconds charged), weight, next level and when it falls back to level 0."""
    now = time.time() if now is None else now
    per_level = dict(
        TaskRecord.objects.waiting()
        .values_list("level")
        .annotate(n=Count("pk"))
        .values_list("level", "n")
    )
    in_broker = scheduler.queue_broker_lengths()
    levels = [
        {"level": level, "queued": per_level.get(level, 0), "in_broker": in_broker[level]}
        for level in range(settings.PQH_LEVELS)
    ]
    windows = windows_of(window_active_users(now=now), now=now)
    User = get_user_model()
    users = User.objects.filter(pk__in=windows).select_related("profile").order_by("username")
    rows = []
    for user in users:
        usage = usage_from_window(windows[user.pk], weight=user_weight(user), now=now)
        rows.append(
            {
                "user": user.get_username(),
                "count": usage.count,
                "usage": usage.usage,
                "weight": usage.weight,
                "usage_per_weight": usage_per_weight(
                    usage=usage.usage, weight=usage.weight, charge=usage.charge
                ),
                "next_level": usage.next_level,
                "level0_at": None
                if usage.level0_at is None
                else usage.level0_at.isoformat().replace("+00:00", "Z"),
            }
        )
    return {
        "charge": settings.PQH_CHARGE,
        "unit": charge_unit(settings.PQH_CHARGE),
        "bounds": charge_bounds(settings.PQH_CHARGE),
        "levels": levels,
        "waiting_in_fair_queue": scheduler.queue_waiting_count(),
        "users": rows,
        "window_seconds": settings.PQH_WINDOW_SECONDS,
    }


# --- Events, progress and the start estimate -------------------------------------------------

# The start estimate uses the mean run time of this many recently finished tasks.
RECENT_RUNS = 20


def task_counts_by_status_level() -> dict[tuple[str, int], int]:
    """Return {(status, level): n} for the queued and running tasks, in one query."""
    rows = (
        TaskRecord.objects.filter(status__in=[states.PENDING, states.STARTED])
        .values_list("status", "level")
        .annotate(n=Count("pk"))
        .values_list("status", "level", "n")
    )
    return {(status, level): n for status, level, n in rows}


def task_progress(record: TaskRecord) -> dict[str, Any] | None:
    """Return what a running task last reported (fraction, message, updated_at), or None."""
    if record.status != states.STARTED:
        return None
    stored = (
        TaskResult.objects.filter(task_id=str(record.pk), status=PROGRESS)
        .values_list("result", flat=True)
        .first()
    )
    if not stored:
        return None
    meta = json.loads(stored)
    return meta if isinstance(meta, dict) else None


def recent_runs(*, limit: int = RECENT_RUNS) -> list[tuple[float, float]]:
    """Return (started, finished) epoch seconds of the last `limit` finished tasks."""
    rows = (
        TaskRecord.objects.filter(
            finished_at__isnull=False,
            started_at__isnull=False,
            status__in=[states.SUCCESS, states.FAILURE],
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:limit]
    )
    return [(start.timestamp(), end.timestamp()) for start, end in rows]


def task_start_estimate(
    record: TaskRecord, *, position: int | None = None, now: float | None = None
) -> datetime | None:
    """Return when a queued task should start, or None (not queued, or no run measured yet).

    From its position, the tasks running now, the mean run time of the last RECENT_RUNS finished
    tasks and the slots they were seen to use at once (estimates.estimate_start says how).
    """
    if record.status != states.PENDING:
        return None
    if position is None:
        position = task_position(record)
    if position is None:
        return None
    runs = recent_runs()
    if not runs:
        return None
    mean_run = sum(end - start for start, end in runs) / len(runs)
    now = time.time() if now is None else now
    # A STARTED row older than the hard time limit belongs to a worker that vanished.
    alive_since = datetime.fromtimestamp(now - settings.PQH_TASK_TIME_LIMIT - 30, tz=UTC)
    running = TaskRecord.objects.filter(
        status=states.STARTED, started_at__gte=alive_since
    ).values_list("started_at", flat=True)
    running_since = [started.timestamp() for started in running]
    start = estimate_start(
        position=position,
        running_since=running_since,
        mean_run=mean_run,
        now=now,
        # Slots: as many as ran at once among the recent tasks, or run now if more.
        slots=max(len(running_since), max_overlap(runs)),
    )
    return datetime.fromtimestamp(start, tz=UTC)
