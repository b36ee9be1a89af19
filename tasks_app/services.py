"""Writes: submit, release, claim, finish and cancel tasks. Every caller goes through these."""

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import states
from celery.exceptions import TimeLimitExceeded, WorkerLostError
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string
from django_celery_results.models import TaskResult

from pqh_site.celery import app as celery_app
from pqh_site.celery import level_queue_name

from . import broker, scheduler, window
from .models import TaskRecord
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
        _window_take_back(user_id=user.pk, member=str(task_id))
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
        _window_take_back(user_id=user.pk, member=str(task_id))
        raise QueueUnavailable(f"the queue is unavailable: {exc}") from exc
    task_release(releases)
    return record


def _window_take_back(*, user_id: int, member: str) -> None:
    """Take back the count of a refused submission; if Redis is unreachable, leave it counted.

    The submission is refused either way (503): an error here must not turn that into a 500.
    """
    try:
        window.window_forget(user_id=user_id, member=member)
    except redis.RedisError as exc:
        logger.warning("could not take back the window entry of %s: %s", member, exc)


def _publish(task_id: str, level: int) -> None:
    from .tasks import run_task

    queue = level_queue_name(level)
    # The anonymous exchange routes by queue name directly, with no binding lookup in Redis.
    # No time limits in the message: the worker's own (PQH_TASK_TIME_LIMIT) apply, the ones its
    # visibility timeout was checked against.
    run_task.apply_async(
        args=[task_id],
        task_id=task_id,
        queue=queue,
        exchange="",
        routing_key=queue,
        time_limit=None,
        soft_time_limit=None,
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


def task_claim(
    *, task_id: str, worker: str = "", redelivered: bool = False, now: datetime | None = None
) -> TaskRecord | None:
    """Mark a queued task as started by this delivery; None if it must not run.

    The conditional update is the claim: only one delivery of a task can move it out of
    PENDING, so a duplicate publish is dropped and a cancelled task never runs. A redelivered
    message (its worker died mid-task) may take over a STARTED task that never finished. The
    claim stamps the row with its own `started_at`, which task_finish checks, so a delivery that
    was taken over cannot record an end. Safe to repeat with the same `now` after a lost
    connection: a claim that committed before the connection dropped is found again.
    """
    now = timezone.now() if now is None else now
    worker = worker[:255]
    allowed = [states.PENDING, states.STARTED] if redelivered else [states.PENDING]
    TaskRecord.objects.filter(pk=task_id, status__in=allowed).update(
        status=states.STARTED, started_at=now, worker=worker, attempts=F("attempts") + 1
    )
    return TaskRecord.objects.filter(
        pk=task_id, status=states.STARTED, started_at=now, worker=worker
    ).first()


def task_execute(record: TaskRecord) -> Any:
    """Run the configured intensive callable (PQH_TASK_CALLABLE) on the task's input."""
    return import_string(settings.PQH_TASK_CALLABLE)(record.input)


def time_limit_error(seconds: float | None = None) -> TimeLimitExceeded:
    """The error stored for a task that ran past its time limit (default PQH_TASK_TIME_LIMIT)."""
    seconds = settings.PQH_TASK_TIME_LIMIT if seconds is None else seconds
    return TimeLimitExceeded(f"the task ran longer than its time limit of {seconds:g} s")


def worker_lost_error(attempts: int) -> WorkerLostError:
    """The error stored for a task whose worker was lost every time it ran."""
    return WorkerLostError(
        f"the task was started {attempts} times and never finished (its worker was lost); "
        "it is not run again"
    )


def task_finish(
    *,
    record: TaskRecord,
    status: str,
    result: Any,
    traceback: str | None = None,
    request: Any = None,
    now: datetime | None = None,
) -> bool:
    """Store a started task's result and mark its row final, in one transaction.

    Both are written or neither, so a poll never sees the row and the stored result disagree.
    Only the delivery whose claim the row still carries (`record.started_at`) may finish it;
    return False when it was not this delivery's to finish (taken over, or already finished by
    an earlier try whose connection dropped after the commit), so repeating is safe.
    `request` is the Celery request, for the extended result fields (task name, worker).
    """
    now = timezone.now() if now is None else now
    with transaction.atomic():
        finished = TaskRecord.objects.filter(
            pk=record.pk, status=states.STARTED, started_at=record.started_at
        ).update(status=status, finished_at=now)
        if finished:
            celery_app.backend.store_result(
                str(record.pk), result, status, traceback=traceback, request=request
            )
    return bool(finished)


def task_time_limit_exceeded(*, task_id: str) -> bool:
    """Fail a started task that its worker killed at the hard time limit; False if not started."""
    record = TaskRecord.objects.filter(pk=task_id, status=states.STARTED).first()
    if record is None:
        return False
    return task_finish(record=record, status=states.FAILURE, result=time_limit_error())


def task_cancel(*, user, task_id: uuid.UUID) -> TaskRecord:
    """Cancel a task of `user` that has not started; raise TaskNotCancellable otherwise."""
    with transaction.atomic():
        cancelled = TaskRecord.objects.filter(pk=task_id, user=user, status=states.PENDING).update(
            status=states.REVOKED, finished_at=timezone.now()
        )
        if not cancelled:
            raise TaskNotCancellable("the task has already started or ended")
        celery_app.backend.store_result(str(task_id), None, states.REVOKED)
    # Best effort: if it was already released (or Redis is unreachable), the worker's claim
    # sees REVOKED and drops it.
    if settings.PQH_FAIRNESS:
        try:
            scheduler.queue_cancel(str(task_id))
        except redis.RedisError as exc:
            logger.warning("could not take cancelled task %s out of the queue: %s", task_id, exc)
    return TaskRecord.objects.get(pk=task_id)


def _requeue(record: TaskRecord) -> None:
    """Queue a task again as recover_lost does: fair queue (original submit time), or Celery."""
    if settings.PQH_FAIRNESS:
        task_release(
            scheduler.queue_enqueue(
                task_id=str(record.pk),
                user_id=record.user_id,
                level=record.level,
                weight=record.weight,
                submitted=record.submitted_at.timestamp(),
            )
        )
    else:
        _publish(str(record.pk), 0)


def task_reconcile(*, now: datetime | None = None, batch: int = 100) -> dict[str, int]:
    """Finish or queue again the started tasks that no delivery will finish; return counts.

    A task started more than its hard time limit plus PQH_RECONCILE_SECONDS ago has ended one
    way or another. If the broker still holds its message (its worker host died and the message
    waits for the visibility timeout, or it is back in a queue), the broker delivers it again:
    it is left alone ("held"). Otherwise its end was lost with its worker (a host killed while
    Redis restarted empty, a hard time limit whose report failed): a stored final result makes
    the row agree ("agreed"); else it is queued again ("requeued"), or, once started
    PQH_MAX_ATTEMPTS times, failed ("failed"). Reads at most `batch` rows (few tasks are ever
    STARTED), so it is cheap to run every PQH_RECONCILE_SECONDS.
    """
    now = timezone.now() if now is None else now
    limit = settings.CELERY_TASK_TIME_LIMIT + settings.PQH_RECONCILE_SECONDS
    counts = {"agreed": 0, "held": 0, "requeued": 0, "failed": 0}
    rows = list(
        TaskRecord.objects.filter(
            status=states.STARTED, started_at__lt=now - timedelta(seconds=limit)
        ).order_by("started_at")[:batch]
    )
    if not rows:
        return counts
    stored = {
        task_id: (status, done)
        for task_id, status, done in TaskResult.objects.filter(
            task_id__in=[str(r.pk) for r in rows], status__in=states.READY_STATES
        ).values_list("task_id", "status", "date_done")
    }
    held = broker.broker_task_ids()
    for record in rows:
        # Conditional on the claim it saw: a delivery that claims the task meanwhile wins.
        same_claim = TaskRecord.objects.filter(
            pk=record.pk, status=states.STARTED, started_at=record.started_at
        )
        if str(record.pk) in stored:
            status, done = stored[str(record.pk)]
            counts["agreed"] += same_claim.update(status=status, finished_at=done)
        elif held is None or str(record.pk) in held:
            counts["held"] += 1
        elif record.attempts >= settings.PQH_MAX_ATTEMPTS:
            failed = task_finish(
                record=record, status=states.FAILURE, result=worker_lost_error(record.attempts)
            )
            counts["failed"] += int(failed)
        elif same_claim.update(status=states.PENDING, started_at=None, worker=""):
            logger.warning("task %s started and was never finished; queueing it again", record.pk)
            # If this fails (Redis down), the row is PENDING and unqueued: recover_lost's case.
            _requeue(record)
            counts["requeued"] += 1
    return counts


FINAL_STATES = (states.SUCCESS, states.FAILURE, states.REVOKED)


def task_prune(
    *,
    now: datetime | None = None,
    days: int | None = None,
    batch: int | None = None,
    max_batches: int = 100,
) -> int:
    """Delete finished tasks older than `days` (PQH_HISTORY_DAYS); return how many went.

    History rows and their stored results go together, `batch` (PQH_PRUNE_BATCH) tasks per
    transaction, oldest first, at most `max_batches` batches per call (the next run goes on).
    Queued and running tasks are never touched, however old.
    """
    now = timezone.now() if now is None else now
    days = settings.PQH_HISTORY_DAYS if days is None else days
    batch = settings.PQH_PRUNE_BATCH if batch is None else batch
    expired = TaskRecord.objects.filter(
        status__in=FINAL_STATES, finished_at__lt=now - timedelta(days=days)
    )
    pruned = 0
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(expired.order_by("finished_at").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            TaskResult.objects.filter(task_id__in=[str(pk) for pk in ids]).delete()
            pruned += TaskRecord.objects.filter(pk__in=ids, status__in=FINAL_STATES).delete()[0]
    return pruned
