"""Writes: submit, release, claim, finish and cancel tasks. Every caller goes through these."""

import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from celery import states
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from pqh_site.celery import app as celery_app
from pqh_site.celery import level_queue_name

from . import events, scheduler, window
from .models import TaskRecord
from .progress import Progress, call_with_progress
from .selectors import level_of, user_weight

logger = logging.getLogger(__name__)


class SubmissionRefused(ValueError):
    """The submission is refused as asked; the message says why (a client error)."""


class QueueUnavailable(RuntimeError):
    """The queue could not take the submission; nothing was recorded (a server error)."""


class TaskNotCancellable(ValueError):
    """The task has already started or ended."""


def _check_input(x: Any) -> None:
    size = len(json.dumps(x, separators=(",", ":")).encode())
    if size > settings.PQH_MAX_INPUT_BYTES:
        raise SubmissionRefused(
            f"x is {size} bytes of JSON; the limit is {settings.PQH_MAX_INPUT_BYTES} bytes"
        )


def task_submit(*, user, x: Any, now: float | None = None) -> TaskRecord:
    """Accept a task for `user`: count it, choose its level, record it and queue it.

    Either all of that happens, or nothing does and an exception says why.
    """
    _check_input(x)
    now = time.time() if now is None else now
    task_id = uuid.uuid4()
    weight = user_weight(user)
    try:
        count_before = window.window_record(user_id=user.pk, member=str(task_id), now=now)
    except redis.RedisError as exc:
        raise QueueUnavailable(f"the queue is unavailable: {exc}") from exc
    level = level_of(count_before=count_before, weight=weight)
    try:
        record = TaskRecord.objects.create(
            task_id=task_id,
            user=user,
            level=level,
            weight=weight,
            count_before=count_before,
            input=x,
            submitted_at=datetime.fromtimestamp(now, tz=UTC),
        )
    except Exception:
        window.window_forget(user_id=user.pk, member=str(task_id))
        raise
    try:
        if settings.PQH_FAIRNESS:
            releases = scheduler.queue_enqueue(
                task_id=str(task_id), user_id=user.pk, level=level, weight=weight, submitted=now
            )
        else:
            _publish(str(task_id), 0)
            releases = []
    except Exception as exc:
        # The record must not outlive a failed enqueue: take both back and refuse.
        record.delete()
        window.window_forget(user_id=user.pk, member=str(task_id))
        raise QueueUnavailable(f"the queue is unavailable: {exc}") from exc
    task_release(releases)
    events.event_submitted(record)
    return record


def _publish(task_id: str, level: int) -> None:
    from .tasks import run_task

    queue = level_queue_name(level)
    # The anonymous exchange routes by queue name directly, with no binding lookup in Redis.
    run_task.apply_async(
        args=[task_id], task_id=task_id, queue=queue, exchange="", routing_key=queue
    )


def task_release(releases: list[scheduler.Release]) -> int:
    """Publish picked tasks to their level queues and confirm them; return how many went."""
    if not releases:
        return 0
    sent: list[str] = []
    try:
        for release in releases:
            _publish(release.task_id, release.target_level)
            sent.append(release.task_id)
    except Exception:
        # What was picked but not published stays in the releasing set and is picked again
        # after PQH_RELEASE_RECOVER_SECONDS.
        logger.exception("publishing released tasks failed; they will be recovered")
    finally:
        scheduler.queue_confirm(sent)
    aged = [r.task_id for r in releases if r.aged and r.task_id in sent]
    if aged:
        TaskRecord.objects.filter(pk__in=aged).update(aged=True)
    return len(sent)


def task_dispatch_pending(*, now: float | None = None, started: str = "") -> int:
    """Release whatever the fair queue allows now (a worker took `started`, or time passed)."""
    if not settings.PQH_FAIRNESS:
        return 0
    return task_release(scheduler.queue_pick(now=now, started=started))


def task_recover_lost(
    *, now: float | None = None, grace: float | None = None, batch: int = 1000
) -> int:
    """Queue again the accepted tasks that a crash left recorded but not queued; return how many.

    A web process that dies between writing the record and queueing it leaves a PENDING row the
    fair queue does not know. Every PENDING row is, after `grace` seconds (default
    PQH_RECOVER_LOST_SECONDS), either waiting,
    being released, or released and not yet started; one that is none of these was lost.
    """
    if not settings.PQH_FAIRNESS:
        return 0
    now = time.time() if now is None else now
    grace = settings.PQH_RECOVER_LOST_SECONDS if grace is None else grace
    cutoff = datetime.fromtimestamp(now - grace, tz=UTC)
    since = datetime.fromtimestamp(now - settings.PQH_VISIBILITY_TIMEOUT, tz=UTC)
    rows = (
        TaskRecord.objects.waiting()
        .filter(submitted_at__lt=cutoff, submitted_at__gte=since)
        .values_list("pk", "user_id", "level", "weight", "submitted_at")
    )
    recovered = 0
    chunk: list[tuple] = []

    def flush() -> int:
        lost = set(scheduler.queue_unknown([str(row[0]) for row in chunk]))
        for pk, user_id, level, weight, submitted in chunk:
            if str(pk) in lost:
                logger.warning("task %s was recorded but not queued; queueing it again", pk)
                task_release(
                    scheduler.queue_enqueue(
                        task_id=str(pk),
                        user_id=user_id,
                        level=level,
                        weight=weight,
                        submitted=submitted.timestamp(),
                    )
                )
        chunk.clear()
        return len(lost)

    for row in rows.iterator(chunk_size=batch):
        chunk.append(row)
        if len(chunk) >= batch:
            recovered += flush()
    if chunk:
        recovered += flush()
    return recovered


def task_claim(*, task_id: str, worker: str = "", redelivered: bool = False) -> TaskRecord | None:
    """Mark a queued task as started by this worker; None if it must not run.

    The conditional update is the claim: only one delivery of a task can move it out of
    PENDING, so a duplicate publish is dropped and a cancelled task never runs. A redelivered
    message (its worker died mid-task) may take over a STARTED task that never finished.
    """
    allowed = [states.PENDING, states.STARTED] if redelivered else [states.PENDING]
    claimed = TaskRecord.objects.filter(pk=task_id, status__in=allowed).update(
        status=states.STARTED, started_at=timezone.now(), worker=worker[:255]
    )
    if not claimed:
        return None
    return TaskRecord.objects.get(pk=task_id)


def task_execute(record: TaskRecord, *, progress: Progress | None = None) -> Any:
    """Run the configured intensive callable (PQH_TASK_CALLABLE) on the task's input.

    A callable that takes a `progress` keyword gets `progress`, to report how far it is.
    """
    return call_with_progress(import_string(settings.PQH_TASK_CALLABLE), record.input, progress)


def task_finish(*, task_id: str, status: str) -> None:
    """Record the end of a started task (after Celery stored its result)."""
    TaskRecord.objects.filter(pk=task_id, status=states.STARTED).update(
        status=status, finished_at=timezone.now()
    )


def task_cancel(*, user, task_id: uuid.UUID) -> TaskRecord:
    """Cancel a task of `user` that has not started; raise TaskNotCancellable otherwise."""
    with transaction.atomic():
        cancelled = TaskRecord.objects.filter(pk=task_id, user=user, status=states.PENDING).update(
            status=states.REVOKED, finished_at=timezone.now()
        )
        if not cancelled:
            raise TaskNotCancellable("the task has already started or ended")
        celery_app.backend.store_result(str(task_id), None, states.REVOKED)
    # Best effort: if it was already released, the worker's claim sees REVOKED and drops it.
    if settings.PQH_FAIRNESS:
        scheduler.queue_cancel(str(task_id))
    return TaskRecord.objects.get(pk=task_id)


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancellation of many tasks did: the ids cancelled, and how many had started."""

    cancelled: list[uuid.UUID]
    not_cancellable: int


def task_cancel_many(*, tasks: Iterable[TaskRecord]) -> CancelOutcome:
    """Cancel each of `tasks` that has not started, one by one through task_cancel.

    For the admin's action and `manage.py cancel_queued`: each task is cancelled exactly as the
    API cancels it, and a task that started meanwhile is counted, not an error.
    """
    cancelled: list[uuid.UUID] = []
    not_cancellable = 0
    for record in tasks:
        try:
            task_cancel(user=record.user, task_id=record.pk)
        except TaskNotCancellable:
            not_cancellable += 1
        else:
            cancelled.append(record.pk)
    return CancelOutcome(cancelled=cancelled, not_cancellable=not_cancellable)
