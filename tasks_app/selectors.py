"""Reads: weights, a user's tasks, usage and queue statistics."""

import json
import time
from dataclasses import dataclass
from typing import Any

from celery import states
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django_celery_results.models import TaskResult

from users_app.models import Profile

from . import scheduler
from .fairness import level_for
from .models import TaskRecord
from .window import window_active_users, window_count


def user_weight(user) -> int:
    """Return the user's weight, creating its row (weight 1) if the user has none."""
    try:
        return user.profile.weight
    except Profile.DoesNotExist:
        profile, _ = Profile.objects.get_or_create(user=user)
        return profile.weight


def level_of(*, count_before: int, weight: int) -> int:
    """Return the level the configured policy gives (0 for everyone when PQH_FAIRNESS is off)."""
    if not settings.PQH_FAIRNESS:
        return 0
    return level_for(count_before=count_before, weight=weight, bounds=settings.PQH_LEVEL_BOUNDS)


def task_list_for_user(user):
    """Return the user's tasks, newest first."""
    return TaskRecord.objects.for_user(user).order_by("-submitted_at")


def task_get_for_user(*, user, task_id) -> TaskRecord | None:
    """Return the user's task with this id, or None (also for another user's task)."""
    return TaskRecord.objects.for_user(user).filter(pk=task_id).first()


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


def task_position(record: TaskRecord) -> int | None:
    """Return how many queued tasks are ahead of a queued task: better levels, then older ones.

    An estimate: within a level the fair queue interleaves users by weight, which this count
    (first come, first served within the level) does not model.
    """
    if record.status != states.PENDING:
        return None
    return (
        TaskRecord.objects.waiting()
        .filter(
            Q(level__lt=record.level) | Q(level=record.level, submitted_at__lt=record.submitted_at)
        )
        .count()
    )


@dataclass(frozen=True)
class Usage:
    count: int
    weight: int
    next_level: int
    window_seconds: int


def user_usage(user, *, now: float | None = None) -> Usage:
    """Return the user's window count, weight and the level their next task would get."""
    count = window_count(user_id=user.pk, now=now)
    weight = user_weight(user)
    level = level_of(count_before=count, weight=weight)
    return Usage(
        count=count, weight=weight, next_level=level, window_seconds=settings.PQH_WINDOW_SECONDS
    )


def queue_stats(*, now: float | None = None) -> dict[str, Any]:
    """Return, per level, the queued tasks, and per user with a live window its count and level."""
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
    counts = window_active_users(now=now)
    User = get_user_model()
    users = User.objects.filter(pk__in=counts).select_related("profile").order_by("username")
    rows = []
    for user in users:
        weight = user_weight(user)
        rows.append(
            {
                "user": user.get_username(),
                "count": counts[user.pk],
                "weight": weight,
                "next_level": level_of(count_before=counts[user.pk], weight=weight),
            }
        )
    return {
        "levels": levels,
        "waiting_in_fair_queue": scheduler.queue_waiting_count(),
        "users": rows,
        "window_seconds": settings.PQH_WINDOW_SECONDS,
    }
