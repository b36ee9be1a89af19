"""Reads of tasks: a user's list, one task, the poll (one query), results and progress."""

import functools
import json
from dataclasses import dataclass
from typing import Any

from celery import states
from django.db import connection
from django.db.models import Count
from django_celery_results.models import TaskResult

from ..models import TaskRecord
from ..worker.progress import PROGRESS


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
            status=status, result=failure_summary(value) if status == states.FAILURE else value
        )
    if status == states.STARTED and stored_status == PROGRESS and stored:
        meta = json.loads(stored)
        return Poll(status=status, progress=meta if isinstance(meta, dict) else None)
    return Poll(status=status)


# A failure's message as the owner sees it: the first line, at most this many characters.
ERROR_MESSAGE_CHARS = 300


def failure_summary(value: Any) -> dict[str, str]:
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
        return failure_summary(value)
    return value


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
