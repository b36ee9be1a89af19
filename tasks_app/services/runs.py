"""The worker's side of a task: claim it, run the work, finish it (once), settle its charge.

Each step is safe to repeat: the claim and the finish are conditional updates in PostgreSQL,
so only one delivery of a task runs it to an end the history records, and a retried step after
a lost connection finds its own committed result.
"""

import logging
from datetime import datetime
from typing import Any

import redis
from celery import states
from celery.exceptions import TimeLimitExceeded, WorkerLostError
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.module_loading import import_string

from pqh_site.core import core
from users_app.selectors import user_weight

from ..models import FINAL_STATES, TaskRecord
from ..worker.progress import Progress, call_with_progress
from . import notices, statements

logger = logging.getLogger(__name__)


def task_free_place(*, task_id: str, user_id: int | None = None) -> None:
    """Stop counting an ended task (SUCCESS, FAILURE, REVOKED) against its user's cap.

    Idempotent. A failure is logged, not raised: the full sweep drops what it leaves behind.
    """
    try:
        if user_id is None:
            user_id = (
                TaskRecord.objects.filter(pk=task_id).values_list("user_id", flat=True).first()
            )
            if user_id is None:
                return
        core().admissions.free(user_id=user_id, task_ids=[str(task_id)])
    except (redis.RedisError, DatabaseError):
        logger.warning("could not release the cap place of task %s; the sweep will", task_id)


def task_free_place_if_ended(*, task_id: str) -> None:
    """Free the cap place of a task that has ended, if its end did not (see tasks.run_task)."""
    try:
        user_id = (
            TaskRecord.objects.filter(pk=task_id, status__in=FINAL_STATES)
            .values_list("user_id", flat=True)
            .first()
        )
        if user_id is not None:
            core().admissions.free(user_id=user_id, task_ids=[str(task_id)])
    except (redis.RedisError, DatabaseError):
        logger.warning("could not release the cap place of task %s; the sweep will", task_id)


def task_claim(
    *,
    task_id: str,
    worker: str = "",
    redelivered: bool = False,
    now: datetime | None = None,
    announce: bool = True,
) -> TaskRecord | None:
    """Mark a queued task as started by this delivery; None if it must not run.

    The conditional update is the claim: only one delivery of a task can move it out of
    PENDING, so a duplicate publish is dropped and a cancelled task never runs. A redelivered
    message (its worker died mid-task) may take over a STARTED task that never finished. The
    claim stamps the row with its own `started_at`, which task_finish checks, so a delivery that
    was taken over cannot record an end. Safe to repeat with the same `now` after a lost
    connection: a claim that committed before the connection dropped is found again.

    One statement (services.statements.claim), which also reads the task's user and weight row:
    the worker logs the start next, and must not need PostgreSQL for that outside the claim's
    retries (a query there, in an outage, failed the task unrecorded), and a time charge's
    settle reads the weight at the end. With `announce=False` the caller announces the start
    (the worker does, in one Redis round trip with the next release).
    """
    now = timezone.now() if now is None else now
    allowed = [states.PENDING, states.STARTED] if redelivered else [states.PENDING]
    record = statements.claim(task_id=str(task_id), worker=worker[:255], allowed=allowed, now=now)
    if record is not None and announce:
        notices.announce(record.pk, notices.STARTED)
    return record


def task_execute(record: TaskRecord, *, progress: Progress | None = None) -> Any:
    """Run the configured intensive callable (PQH_TASK_CALLABLE) on the task's input.

    A callable that takes a `progress` keyword gets `progress`, to report how far it is.
    """
    return call_with_progress(import_string(settings.PQH_TASK_CALLABLE), record.input, progress)


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
    run_seconds: float | None = None,
) -> bool:
    """Store a started task's result and mark its row final, in one statement.

    Both are written or neither, so a poll never sees the row and the stored result disagree.
    Only the delivery whose claim the row still carries (`record.started_at`) may finish it;
    return False when it was not this delivery's to finish (taken over, or already finished by
    an earlier try whose connection dropped after the commit), so repeating is safe.
    `request` is the Celery request, for the extended result fields (task name, worker).
    `run_seconds`, what the run spent in the work callable, is stored with the end and, for a
    task charged by time, charged to its user instead of its estimate (task_settle). When this
    call finished the task, `record` carries its end too (status, finished_at, run_seconds).
    """
    now = timezone.now() if now is None else now
    fields = statements.result_fields(str(record.pk), result, status, traceback, request)
    finished = statements.finish(
        record=record, status=status, fields=fields, now=now, run_seconds=run_seconds
    )
    if finished:
        record.status, record.finished_at, record.run_seconds = status, now, run_seconds
        if connection.in_atomic_block:  # a caller's transaction: the notice after its commit
            task_free_place(task_id=str(record.pk), user_id=record.user_id)
            notices.announce(record.pk, notices.ENDED)
            if run_seconds is not None:
                task_settle(record, seconds=run_seconds)
        else:  # committed: the place, the notice and the settle in one Redis round trip
            _ended(record, run_seconds=run_seconds)
    elif TaskRecord.objects.filter(pk=record.pk, status__in=FINAL_STATES).exists():
        # The task had already ended: an earlier try of this finish may have committed and
        # lost its answer with the connection (then nothing else would free the place until
        # the full sweep). Releasing is idempotent.
        task_free_place(task_id=str(record.pk), user_id=record.user_id)
    return finished


def _ended(record: TaskRecord, *, run_seconds: float | None = None) -> None:
    """Free an ended task's place under its user's cap, announce its end and, charged by
    time, settle its charge (task_settle): one round trip.

    Best effort, as task_free_place, notices.announce and task_settle: the full sweep frees a
    place left behind, and waiters re-read PostgreSQL when their wait times out.
    """
    the_core = core()
    batch = the_core.batch()
    batch.command("ZREM", the_core.keys.active(record.user_id), str(record.pk))  # admissions.free
    notices.add_to(batch, record.pk, notices.ENDED)
    try:
        if run_seconds is not None and _settles(record):
            the_core.queue.settle_in(batch, **_settle_call(record, run_seconds))
        batch.execute()
    except (redis.RedisError, DatabaseError) as exc:
        logger.warning(
            "could not free the place of task %s, announce its end or charge its run time: %s",
            record.pk,
            exc,
        )


def _settles(record: TaskRecord) -> bool:
    return record.charge == "time" and settings.PQH_FAIRNESS


def _settle_call(record: TaskRecord, seconds: float) -> dict:
    return {
        "task_id": str(record.pk),
        "user_id": record.user_id,
        "level": record.level,
        "weight": user_weight(record.user),
        "charged": record.cost,
        "seconds": seconds,
    }


def task_settle(record: TaskRecord, *, seconds: float) -> None:
    """Charge a task charged by time what its run took (once: its finish committed).

    Best effort: if Redis is down the estimate stays charged, which the window forgets after
    PQH_WINDOW_SECONDS, and the user's mean misses one run.
    """
    if not _settles(record):
        return
    try:
        core().queue.settle(**_settle_call(record, seconds))
    except (redis.RedisError, DatabaseError) as exc:
        logger.warning("could not charge task %s its run time: %s", record.pk, exc)


def task_time_limit_exceeded(*, task_id: str) -> bool:
    """Fail a started task that its worker killed at the hard time limit; False if not started."""
    record = TaskRecord.objects.filter(pk=task_id, status=states.STARTED).first()
    if record is None:
        return False
    # Killed at the hard limit: it ran from its claim until now.
    seconds = max(0.0, (timezone.now() - record.started_at).total_seconds())
    return task_finish(
        record=record, status=states.FAILURE, result=time_limit_error(), run_seconds=seconds
    )
