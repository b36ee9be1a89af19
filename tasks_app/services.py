"""Writes: submit, release, claim, finish and cancel tasks. Every caller goes through these."""

import functools
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import states
from celery.exceptions import TimeLimitExceeded, WorkerLostError
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django_celery_results.models import TaskResult
from redis import exceptions as redis_exceptions

from pqh_site.celery import app as celery_app

from . import admission, broker, events, scheduler
from .models import IDEMPOTENCY_KEY_MAX_LENGTH, TaskRecord
from .progress import Progress, call_with_progress
from .selectors import level_of, user_max_active, user_weight

logger = logging.getLogger(__name__)


class SubmissionRefused(ValueError):
    """The submission is refused as asked; the message says why (a client error)."""

    reason = "invalid"


class InvalidIdempotencyKey(ValueError):
    """The Idempotency-Key is empty, too long or not printable ASCII."""

    reason = "invalid"


class QueueUnavailable(RuntimeError):
    """Redis or PostgreSQL could not take the submission; nothing was recorded (a server error)."""

    reason = "unavailable"

    @property
    def retry_after(self) -> int:
        return settings.PQH_UNAVAILABLE_RETRY_AFTER_SECONDS


class UserCapReached(Exception):
    """The user already has as many tasks queued or running as its cap allows."""

    reason = "user_cap"

    def __init__(self, *, limit: int, active: int):
        super().__init__(
            f"you have {active} tasks queued or running; the limit is {limit}: "
            "submit again when one has finished"
        )
        self.limit, self.active = limit, active
        self.retry_after = settings.PQH_RETRY_AFTER_SECONDS


class QueueFull(Exception):
    """PQH_MAX_QUEUED tasks are queued in all: the service takes no more for now."""

    reason = "queue_full"

    def __init__(self, *, queued: int):
        super().__init__(f"the queue is full ({queued} tasks queued); try again later")
        self.queued = queued
        self.retry_after = settings.PQH_RETRY_AFTER_SECONDS


class IdempotencyConflict(Exception):
    """An earlier request with the same Idempotency-Key is still being processed."""

    reason = "idempotency_conflict"

    def __init__(self, *, task_id: str):
        super().__init__(
            "a request with this Idempotency-Key is still being processed; retry shortly"
        )
        self.task_id = task_id


class TaskNotCancellable(ValueError):
    """The task has already started or ended."""


def _check_input(x: Any) -> None:
    size = len(json.dumps(x, separators=(",", ":")).encode())
    if size > settings.PQH_MAX_INPUT_BYTES:
        raise SubmissionRefused(
            f"x is {size} bytes of JSON; the limit is {settings.PQH_MAX_INPUT_BYTES} bytes"
        )


def _check_idempotency_key(value: str | None) -> str:
    if value is None:
        return ""
    rule = f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters"
    if len(value) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise InvalidIdempotencyKey(f"{rule}, got {len(value)}")
    if not value.strip() or not value.isprintable() or not value.isascii():
        raise InvalidIdempotencyKey(rule)
    return value


def _undo(*, user_id: int, task_id: str, idempotency_key: str, replay_id: str = "") -> None:
    """Take back an admission; if Redis is down, what is left expires or is swept."""
    try:
        admission.admission_undo(
            user_id=user_id, task_id=task_id, idempotency_key=idempotency_key, replay_id=replay_id
        )
    except redis.RedisError:
        logger.warning("could not take back the admission of %s; the sweeps will", task_id)


def _replayed(record: TaskRecord, *, user) -> TaskRecord:
    record.user = user  # the submitter, already loaded: the log line costs no query
    record.replayed = True
    events.event_submitted(record, replayed=True)
    return record


# The columns a submission writes, in order; queue_seq comes back from the database sequence.
_INSERT_COLUMNS = (
    "task_id",
    "user",
    "level",
    "weight",
    "count_before",
    "charge",
    "usage_before",
    "cost",
    "input",
    "status",
    "aged",
    "submitted_at",
    "idempotency_key",
    "attempts",
    "worker",
)


@functools.cache
def _insert_sql() -> tuple[str, tuple]:
    """The submission's INSERT, built once per process from the model (not compiled per call)."""
    meta = TaskRecord._meta
    fields = tuple(meta.get_field(name) for name in _INSERT_COLUMNS)
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(
        quote(meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
        quote(meta.get_field("queue_seq").column),
    )
    return sql, fields


def _insert_row(record: TaskRecord) -> None:
    """INSERT one new record with a statement prepared once; the ORM's save() compiles its
    INSERT on every call, which was a fifth of a submission's CPU (docs/performance.md).

    Values go through each field's own preparation (the JSON input as the ORM writes it).
    Nothing listens to TaskRecord's save signals; the record is marked saved as save() would.
    """
    sql, fields = _insert_sql()
    values = [f.get_db_prep_save(getattr(record, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        (record.queue_seq,) = cursor.fetchone()
    record._state.adding = False
    record._state.db = connection.alias


def _insert(record: TaskRecord, *, user, now: float) -> TaskRecord:
    """INSERT the record; with an Idempotency-Key PostgreSQL's unique constraint may refuse it.

    Then the key belongs to an earlier task that Redis forgot (it lost its data): within
    PQH_IDEMPOTENCY_SECONDS that task is the answer; older, the key is taken from it.
    """
    if not record.idempotency_key:
        _insert_row(record)
        return record
    for _ in range(2):
        try:
            with transaction.atomic():  # a savepoint: a refused INSERT spoils no transaction
                _insert_row(record)
            return record
        except IntegrityError:
            earlier = TaskRecord.objects.filter(
                user=user, idempotency_key=record.idempotency_key
            ).first()
            if earlier is None:
                continue  # released since: try again
            if earlier.submitted_at.timestamp() >= now - settings.PQH_IDEMPOTENCY_SECONDS:
                return earlier
            TaskRecord.objects.filter(pk=earlier.pk).update(idempotency_key=None)
    _insert_row(record)
    return record


def task_submit(
    *, user, x: Any, idempotency_key: str | None = None, now: float | None = None
) -> TaskRecord:
    """Accept a task for `user`: admit it, choose its level, record it and queue it.

    Either all of that happens, or nothing does and an exception says why: UserCapReached,
    QueueFull, IdempotencyConflict, QueueUnavailable, SubmissionRefused, InvalidIdempotencyKey.
    With an Idempotency-Key seen from this user within PQH_IDEMPOTENCY_SECONDS, the earlier
    task is returned instead, with `replayed` set. The returned record carries
    `position_at_submit`, the queue position the fair queue gave when it took the task.
    """
    _check_input(x)
    key = _check_idempotency_key(idempotency_key)
    now = time.time() if now is None else now
    weight = user_weight(user)
    cap = user_max_active(user)
    for _ in range(2):
        task_id = str(uuid.uuid4())
        try:
            decision = admission.admission_admit(
                user_id=user.pk, task_id=task_id, now=now, user_cap=cap, idempotency_key=key
            )
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the queue is unavailable: {exc}") from exc
        if decision.outcome != admission.REPLAY:
            break
        earlier = TaskRecord.objects.filter(pk=decision.task_id, user=user).first()
        if earlier is not None:
            return _replayed(earlier, user=user)
        # The key names a task that no longer exists (pruned): free the key, admit afresh.
        _undo(user_id=user.pk, task_id=decision.task_id, idempotency_key=key)
    if decision.outcome == admission.USER_CAP:
        raise UserCapReached(limit=cap, active=decision.count)
    if decision.outcome == admission.QUEUE_FULL:
        raise QueueFull(queued=decision.count)
    if decision.outcome == admission.IN_PROGRESS:
        raise IdempotencyConflict(task_id=decision.task_id)
    if decision.outcome != admission.ADMITTED:
        raise QueueUnavailable(f"the queue answered {decision.outcome!r}")

    count_before = decision.count
    record = TaskRecord(
        task_id=uuid.UUID(task_id),
        user=user,
        level=level_of(count_before=count_before, weight=weight, usage=decision.usage),
        weight=weight,
        count_before=count_before,
        charge=settings.PQH_CHARGE,
        usage_before=decision.usage,
        cost=decision.cost,
        input=x,
        submitted_at=datetime.fromtimestamp(now, tz=UTC),
        idempotency_key=key or None,
    )
    try:
        inserted = _insert(record, user=user, now=now)
    except DatabaseError as exc:
        _undo(user_id=user.pk, task_id=task_id, idempotency_key=key)
        # The driver's words name hosts and internals: the log has them, the client does not.
        logger.warning("task %s not recorded: %s", task_id, exc)
        raise QueueUnavailable("the database is unavailable; try again shortly") from exc
    except BaseException:
        _undo(user_id=user.pk, task_id=task_id, idempotency_key=key)
        raise
    if inserted is not record:  # the key belonged to an earlier task
        _undo(user_id=user.pk, task_id=task_id, idempotency_key=key, replay_id=str(inserted.pk))
        return _replayed(inserted, user=user)

    try:
        if settings.PQH_FAIRNESS:
            task = scheduler.QueuedTask(
                task_id=task_id,
                seq=record.queue_seq,
                user_id=user.pk,
                level=record.level,
                weight=weight,
                submitted=now,
                cost=decision.cost,
                idempotency_key=admission.idempotency_redis_key(user.pk, key) if key else "",
                idempotency_ttl=settings.PQH_IDEMPOTENCY_SECONDS,
            )
            queued = scheduler.queue_add([task], now=now, position=True)
            releases, record.position_at_submit = queued.releases, queued.position
        else:
            _publish(task_id, 0)
            admission.admission_complete(task_id=task_id, idempotency_key=key, user_id=user.pk)
            releases = []
    except Exception as exc:
        # The record must not outlive a failed enqueue: take everything back and refuse.
        try:
            record.delete()
        except DatabaseError:
            logger.warning("task %s is recorded but not queued; the sweep will queue it", task_id)
        _undo(user_id=user.pk, task_id=task_id, idempotency_key=key)
        raise QueueUnavailable(f"the queue is unavailable: {exc}") from exc
    # Recorded and queued: the submission is accepted, whatever happens to the releases (a
    # worker's tick releases what this could not).
    try:
        task_release(releases)
    except Exception:
        logger.warning("releasing after the submission of %s failed; a worker will", task_id)
    events.event_submitted(record)
    return record


# The Celery task that runs a submission (tasks.run_task), published by name: tasks.py uses
# this module, so this module does not import it.
RUN_TASK = "pqh.run"


def _publish(task_id: str, level: int) -> None:
    queue = settings.PQH_LEVEL_QUEUES[level]
    # The anonymous exchange routes by queue name directly, with no binding lookup in Redis.
    # No time limits in the message: the worker's own (PQH_TASK_TIME_LIMIT) apply, the ones its
    # visibility timeout was checked against.
    celery_app.send_task(
        RUN_TASK,
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
        try:
            scheduler.queue_confirm(sent)
        except redis.RedisError as exc:
            # Published but not confirmed: published again after PQH_RELEASE_RECOVER_SECONDS
            # (the claim drops the duplicate), or, if Redis lost its data, queued again by the
            # recovery sweep. Either way the release happened: this is no caller's failure.
            logger.warning("could not confirm %d released tasks: %s", len(sent), exc)
    aged = [r.task_id for r in releases if r.aged and r.task_id in sent]
    if aged:
        TaskRecord.objects.filter(pk__in=aged).update(aged=True)
    return len(sent)


def task_dispatch_pending(*, now: float | None = None, started: str = "") -> int:
    """Release whatever the fair queue allows now (a worker took `started`, or time passed)."""
    if not settings.PQH_FAIRNESS:
        return 0
    return task_release(scheduler.queue_pick(now=now, started=started))


def _walk(rows, *, batch: int):
    """Yield `rows` in submit order, `batch` at a time (keyset pagination on the queue index)."""
    after = None
    while True:
        page = rows.order_by("submitted_at", "queue_seq")
        if after is not None:
            # The first condition is what the index range starts from; the second skips what
            # the previous page already had at the same instant.
            page = page.filter(submitted_at__gte=after[0]).filter(
                Q(submitted_at__gt=after[0]) | Q(queue_seq__gt=after[1])
            )
        chunk = list(page[:batch])
        if not chunk:
            return
        yield chunk
        if len(chunk) < batch:
            return
        after = (chunk[-1].submitted_at, chunk[-1].queue_seq)


_SWEEP_FIELDS = ("task_id", "queue_seq", "user_id", "level", "weight", "cost", "submitted_at")


def _requeue(rows, *, now: float, batch: int, lock) -> int:
    """Offer queued rows to the fair queue in submit order; return how many it did not hold."""
    added = 0
    for chunk in _walk(rows.only(*_SWEEP_FIELDS, "idempotency_key"), batch=batch):
        tasks = []
        for row in chunk:
            submitted = row.submitted_at.timestamp()
            key = row.idempotency_key or ""
            tasks.append(
                scheduler.QueuedTask(
                    task_id=str(row.pk),
                    seq=row.queue_seq,
                    user_id=row.user_id,
                    level=row.level,
                    weight=row.weight,
                    submitted=submitted,
                    cost=row.cost,
                    idempotency_key=admission.idempotency_redis_key(row.user_id, key)
                    if key
                    else "",
                    idempotency_ttl=settings.PQH_IDEMPOTENCY_SECONDS - (now - submitted),
                )
            )
        queued = scheduler.queue_add(tasks, now=now)
        added += queued.added
        task_release(queued.releases)
        lock.reacquire()  # still ours, for another lock timeout; raises if Redis lost it
    return added


def _restore_active(*, batch: int) -> None:
    """Rebuild every user's active set from the PENDING and STARTED rows (Redis lost them)."""
    fields = ("task_id", "queue_seq", "user_id", "submitted_at")
    for status in (states.PENDING, states.STARTED):  # one index range each
        rows = TaskRecord.objects.filter(status=status).only(*fields)
        for chunk in _walk(rows, batch=batch):
            admission.admission_restore(
                (row.user_id, str(row.pk), row.submitted_at.timestamp()) for row in chunk
            )
            # A task that ended while this batch was read released its place before it was
            # put back: take those out again.
            _release_ended({row.pk: row.user_id for row in chunk})


def _release_ended(owners: dict) -> None:
    """Release the places of the tasks of `owners` ({task id: user id}) that are not live."""
    live = set(
        TaskRecord.objects.filter(
            pk__in=list(owners), status__in=[states.PENDING, states.STARTED]
        ).values_list("pk", flat=True)
    )
    ended: dict[int, list[str]] = {}
    for task_id, user_id in owners.items():
        if task_id not in live:
            ended.setdefault(user_id, []).append(str(task_id))
    for user_id, task_ids in ended.items():
        admission.admission_release(user_id=user_id, task_ids=task_ids)


def _prune_active(*, cutoff: float, batch: int) -> None:
    """Drop active-set entries admitted before `cutoff` whose task ended or was never recorded."""
    for user_id, task_ids in admission.admission_active_before(cutoff=cutoff).items():
        for i in range(0, len(task_ids), batch):
            owners = {}
            for task_id in task_ids[i : i + batch]:
                try:
                    owners[uuid.UUID(task_id)] = user_id
                except ValueError:
                    admission.admission_release(user_id=user_id, task_ids=[task_id])
            _release_ended(owners)


# One sweep may run this long between two batches before another worker may take over.
SWEEP_LOCK_SECONDS = 120


def task_recover_lost(
    *, now: float | None = None, grace: float | None = None, batch: int = 500
) -> int:
    """Queue again accepted tasks the fair queue does not hold; return how many it took.

    Called by every worker about every PQH_RECOVER_LOST_SECONDS; one at a time does the work.
    - Redis lost its data (the epoch marker is gone, see scheduler.sweep_epoch): every PENDING
      row, however old, in submit order, and the active sets rebuilt from the PENDING and
      STARTED rows; then the marker is written again. Enqueue is idempotent, and the claim in
      PostgreSQL drops a task delivered twice, so each runs once.
    - Every PQH_FULL_SWEEP_SECONDS: every PENDING row older than `grace` (a safety pass), and
      active-set entries of tasks that ended are dropped.
    - Otherwise only rows submitted since the last sweep's mark (less `grace`) and older than
      `grace` (default PQH_RECOVER_LOST_SECONDS): a web process that died between writing the
      record and queueing it. The work follows the submission rate, not the queue's depth.
    """
    if not settings.PQH_FAIRNESS:
        return 0
    now = time.time() if now is None else now
    grace = settings.PQH_RECOVER_LOST_SECONDS if grace is None else grace
    lock = scheduler.sweep_lock(timeout=SWEEP_LOCK_SECONDS)
    if not lock.acquire():
        return 0
    try:
        waiting = TaskRecord.objects.waiting()
        settled = waiting.filter(submitted_at__lt=datetime.fromtimestamp(now - grace, tz=UTC))
        if scheduler.sweep_epoch() is None:
            added = _requeue(waiting, now=now, batch=batch, lock=lock)
            _restore_active(batch=batch)
            scheduler.sweep_finish_recovery(lock, now=now, mark=now - grace)
            if added:
                logger.warning("Redis had lost the queue: %d queued tasks queued again", added)
            return added
        if scheduler.sweep_full_due():
            added = _requeue(settled, now=now, batch=batch, lock=lock)
            _prune_active(cutoff=now - grace, batch=batch)
        else:
            mark = scheduler.sweep_mark()
            if mark is not None:
                since = datetime.fromtimestamp(mark - grace, tz=UTC)
                settled = settled.filter(submitted_at__gte=since)
            added = _requeue(settled, now=now, batch=batch, lock=lock)
        scheduler.sweep_set_mark(now - grace)
        if added:
            logger.warning("%d tasks were recorded but not queued; queued them again", added)
        return added
    except redis_exceptions.LockError:
        return 0  # Redis lost the lock mid-sweep (a restart): the next sweep starts over
    finally:
        try:
            lock.release()
        except redis_exceptions.LockError:
            pass


def task_release_cap(*, task_id: str, user_id: int | None = None) -> None:
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
        admission.admission_release(user_id=user_id, task_ids=[str(task_id)])
    except (redis.RedisError, DatabaseError):
        logger.warning("could not release the cap place of task %s; the sweep will", task_id)


def task_release_cap_if_ended(*, task_id: str) -> None:
    """Free the cap place of a task that has ended, if its end did not (see run_task)."""
    try:
        user_id = (
            TaskRecord.objects.filter(pk=task_id, status__in=FINAL_STATES)
            .values_list("user_id", flat=True)
            .first()
        )
        if user_id is not None:
            admission.admission_release(user_id=user_id, task_ids=[str(task_id)])
    except (redis.RedisError, DatabaseError):
        logger.warning("could not release the cap place of task %s; the sweep will", task_id)


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
    # With its user: the worker logs the start next, and must not need PostgreSQL for that
    # outside the claim's retries (a query there, in an outage, failed the task unrecorded).
    # And the user's weight row, which a time charge's settle reads at the end.
    return (
        TaskRecord.objects.filter(pk=task_id, status=states.STARTED, started_at=now, worker=worker)
        .select_related("user", "user__profile")
        .first()
    )


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
    """Store a started task's result and mark its row final, in one transaction.

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
    with transaction.atomic():
        finished = TaskRecord.objects.filter(
            pk=record.pk, status=states.STARTED, started_at=record.started_at
        ).update(status=status, finished_at=now, run_seconds=run_seconds)
        if finished:
            celery_app.backend.store_result(
                str(record.pk), result, status, traceback=traceback, request=request
            )
    if finished or TaskRecord.objects.filter(pk=record.pk, status__in=FINAL_STATES).exists():
        # Also when the task had already ended: an earlier try of this finish may have
        # committed and lost its answer with the connection (then nothing else would free the
        # place until the full sweep). Releasing is idempotent.
        task_release_cap(task_id=str(record.pk), user_id=record.user_id)
    if finished:
        record.status, record.finished_at, record.run_seconds = status, now, run_seconds
        if run_seconds is not None:
            task_settle(record, seconds=run_seconds)
    return bool(finished)


def task_settle(record: TaskRecord, *, seconds: float) -> None:
    """Charge a task charged by time what its run took (once: its finish committed).

    Best effort: if Redis is down the estimate stays charged, which the window forgets after
    PQH_WINDOW_SECONDS, and the user's mean misses one run.
    """
    if record.charge != "time" or not settings.PQH_FAIRNESS:
        return
    try:
        scheduler.queue_settle(
            task_id=str(record.pk),
            user_id=record.user_id,
            level=record.level,
            weight=user_weight(record.user),
            charged=record.cost,
            seconds=seconds,
        )
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


def task_cancel(*, user, task_id: uuid.UUID) -> TaskRecord:
    """Cancel a task of `user` that has not started; raise TaskNotCancellable otherwise."""
    with transaction.atomic():
        cancelled = TaskRecord.objects.filter(pk=task_id, user=user, status=states.PENDING).update(
            status=states.REVOKED, finished_at=timezone.now()
        )
        if not cancelled:
            raise TaskNotCancellable("the task has already started or ended")
        celery_app.backend.store_result(str(task_id), None, states.REVOKED)
    record = TaskRecord.objects.get(pk=task_id)
    if settings.PQH_FAIRNESS:
        # Best effort: if it was already released, the worker's claim sees REVOKED and drops it.
        try:
            scheduler.queue_cancel(
                task_id=str(task_id),
                seq=record.queue_seq,
                level=record.level,
                user_id=record.user_id,
                refund=record.charge == "time",
            )
        except redis.RedisError:
            logger.warning("cancelled task %s stays in the fair queue until picked", task_id)
    task_release_cap(task_id=str(task_id), user_id=record.user_id)
    return record


def task_reweight_backlog(*, user_id: int, weight: int) -> None:
    """Let a user's new weight reach its waiting tasks, after the change commits.

    The fair queue respaces them (lua/reweight.lua): within their levels they are served at the
    new weight from the next pick on. Best effort: if Redis is down they keep the old spacing,
    and the user's new submissions use the new weight.
    """

    def reweight() -> None:
        if not settings.PQH_FAIRNESS:
            return
        try:
            scheduler.queue_reweight(user_id=user_id, weight=weight)
        except redis.RedisError as exc:
            logger.warning(
                "could not apply the new weight of user %s to its queue: %s", user_id, exc
            )

    transaction.on_commit(reweight)


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


def _requeue_one(record: TaskRecord) -> None:
    """Queue a task again as recover_lost does: fair queue (original submit time), or Celery."""
    if settings.PQH_FAIRNESS:
        task_release(
            scheduler.queue_enqueue(
                task_id=str(record.pk),
                seq=record.queue_seq,
                user_id=record.user_id,
                level=record.level,
                weight=record.weight,
                submitted=record.submitted_at.timestamp(),
                cost=record.cost,
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
            if same_claim.update(status=status, finished_at=done):
                counts["agreed"] += 1
                task_release_cap(task_id=str(record.pk), user_id=record.user_id)
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
            _requeue_one(record)
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
