"""Submission: admit a task, choose its level, record it and queue it, or refuse it whole."""

import functools
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from fairqueue import admission
from fairqueue.admission import Decision
from fairqueue.policy import level_of
from fairqueue.queue import QueuedTask, Release
from pqh_site.core import core
from users_app.selectors import user_cap, user_team, user_team_row, user_weight

from ..models import IDEMPOTENCY_KEY_MAX_LENGTH, TaskRecord
from ..ops import events
from .publishing import publish, task_release

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
        core().admissions.undo(
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
    "team",
    "team_weight",
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
    *,
    user,
    x: Any,
    idempotency_key: str | None = None,
    now: float | None = None,
    position: bool = True,
) -> TaskRecord:
    """Accept a task for `user`: admit it, choose its level, record it and queue it.

    Either all of that happens, or nothing does and an exception says why: UserCapReached,
    QueueFull, IdempotencyConflict, QueueUnavailable, SubmissionRefused, InvalidIdempotencyKey.
    With an Idempotency-Key seen from this user within PQH_IDEMPOTENCY_SECONDS, the earlier
    task is returned instead, with `replayed` set. The returned record carries
    `position_at_submit`, the queue position the fair queue gave when it took the task (None
    with `position=False`: for an answer that does not show it, the script skips counting it).

    Three steps, each taking back what the ones before it did if it fails: admit (Redis: the
    window, the cap, the global bound, the key), record (PostgreSQL), queue (the fair queue, or
    the broker with fairness off). Publishing what the queue picks is best effort after that.
    """
    _check_input(x)
    key = _check_idempotency_key(idempotency_key)
    now = time.time() if now is None else now
    admitted = _admit(user=user, key=key, now=now)
    if isinstance(admitted, TaskRecord):
        return _replayed(admitted, user=user)
    task_id, decision = admitted
    record = _new_record(user=user, x=x, key=key, now=now, task_id=task_id, decision=decision)
    inserted = _record(record, user=user, key=key, now=now)
    if inserted is not record:  # the key belonged to an earlier task
        _undo(user_id=user.pk, task_id=task_id, idempotency_key=key, replay_id=str(inserted.pk))
        return _replayed(inserted, user=user)
    releases = _queue(record, key=key, now=now, position=position)
    # Recorded and queued: the submission is accepted, whatever happens to the releases (a
    # worker's tick releases what this could not).
    try:
        task_release(releases)
    except Exception:
        logger.warning("releasing after the submission of %s failed; a worker will", task_id)
    events.event_submitted(record)
    return record


def _admit(*, user, key: str, now: float) -> tuple[str, Decision] | TaskRecord:
    """Admit a new task id in Redis; return (task id, decision), the earlier task an
    Idempotency-Key replays, or raise the refusal."""
    cap = user_cap(user)
    admissions = core().admissions
    for _ in range(2):
        task_id = str(uuid.uuid4())
        try:
            decision = admissions.admit(
                user_id=user.pk, task_id=task_id, now=now, user_cap=cap, idempotency_key=key
            )
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the queue is unavailable: {exc}") from exc
        if decision.outcome != admission.REPLAY:
            break
        earlier = TaskRecord.objects.filter(pk=decision.task_id, user=user).first()
        if earlier is not None:
            return earlier
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
    return task_id, decision


def _new_record(
    *, user, x: Any, key: str, now: float, task_id: str, decision: Decision
) -> TaskRecord:
    """The history row of an admitted task, with the level the policy gives it. No I/O."""
    weight = user_weight(user)
    team = user_team_row(user)  # loaded with the weight row: no query
    return TaskRecord(
        task_id=uuid.UUID(task_id),
        user=user,
        level=level_of(
            core().config, count_before=decision.count, weight=weight, usage=decision.usage
        ),
        weight=weight,
        team="" if team is None else team.name,
        team_weight=None if team is None else team.weight,
        count_before=decision.count,
        charge=settings.PQH_CHARGE,
        usage_before=decision.usage,
        cost=decision.cost,
        input=x,
        submitted_at=datetime.fromtimestamp(now, tz=UTC),
        idempotency_key=key or None,
    )


def _record(record: TaskRecord, *, user, key: str, now: float) -> TaskRecord:
    """INSERT the row (or find the earlier task its key names); undo the admission if it fails."""
    task_id = str(record.pk)
    try:
        return _insert(record, user=user, now=now)
    except DatabaseError as exc:
        _undo(user_id=user.pk, task_id=task_id, idempotency_key=key)
        # The driver's words name hosts and internals: the log has them, the client does not.
        logger.warning("task %s not recorded: %s", task_id, exc)
        raise QueueUnavailable("the database is unavailable; try again shortly") from exc
    except BaseException:
        _undo(user_id=user.pk, task_id=task_id, idempotency_key=key)
        raise


def _queue(record: TaskRecord, *, key: str, now: float, position: bool) -> list[Release]:
    """Put the recorded task in the fair queue (or the broker, with fairness off) and return
    what may be released now; on failure take back the row and the admission, and refuse."""
    task_id, user_id = str(record.pk), record.user_id
    the_core = core()
    try:
        if not settings.PQH_FAIRNESS:
            publish(task_id, 0)
            the_core.admissions.complete(task_id=task_id, idempotency_key=key, user_id=user_id)
            return []
        team, team_weight = user_team(record.user)  # loaded with the user: no query
        task = QueuedTask(
            task_id=task_id,
            seq=record.queue_seq,
            user_id=user_id,
            level=record.level,
            weight=record.weight,
            submitted=now,
            cost=record.cost,
            team=team,
            team_weight=team_weight,
            idempotency_key=the_core.keys.idempotency(user_id, key) if key else "",
            idempotency_ttl=settings.PQH_IDEMPOTENCY_SECONDS,
        )
        queued = the_core.queue.add([task], now=now, position=position)
        record.position_at_submit = queued.position
        return queued.releases
    except Exception as exc:
        # The record must not outlive a failed enqueue: take everything back and refuse.
        try:
            record.delete()
        except DatabaseError:
            logger.warning("task %s is recorded but not queued; the sweep will queue it", task_id)
        _undo(user_id=user_id, task_id=task_id, idempotency_key=key)
        raise QueueUnavailable(f"the queue is unavailable: {exc}") from exc
