"""Recovery: what a crash or a Redis restart left behind is queued again or finished.

Workers call these from their tick (tasks_app/worker/steps.py): recover_lost puts back in the
fair queue the accepted tasks it does not hold, reconcile finishes or queues again the started
tasks no delivery will finish. PostgreSQL is the truth; Redis is rebuilt from it.
"""

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from celery import states
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_celery_results.models import TaskResult
from redis import exceptions as redis_exceptions

from fairqueue.queue import QueuedTask
from pqh_site.core import core

from ..models import TaskRecord
from . import notices
from .publishing import publish, task_release
from .runs import task_finish, task_free_place, worker_lost_error

logger = logging.getLogger(__name__)


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
    the_core = core()
    for chunk in _walk(rows.only(*_SWEEP_FIELDS, "idempotency_key"), batch=batch):
        tasks = []
        for row in chunk:
            submitted = row.submitted_at.timestamp()
            key = row.idempotency_key or ""
            tasks.append(
                QueuedTask(
                    task_id=str(row.pk),
                    seq=row.queue_seq,
                    user_id=row.user_id,
                    level=row.level,
                    weight=row.weight,
                    submitted=submitted,
                    cost=row.cost,
                    idempotency_key=the_core.keys.idempotency(row.user_id, key) if key else "",
                    idempotency_ttl=settings.PQH_IDEMPOTENCY_SECONDS - (now - submitted),
                )
            )
        queued = the_core.queue.add(tasks, now=now)
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
            core().admissions.restore(
                (row.user_id, str(row.pk), row.submitted_at.timestamp()) for row in chunk
            )
            # A task that ended while this batch was read released its place before it was
            # put back: take those out again.
            _free_ended({row.pk: row.user_id for row in chunk})


def _free_ended(owners: dict) -> None:
    """Free the cap places of the tasks of `owners` ({task id: user id}) that are not live."""
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
        core().admissions.free(user_id=user_id, task_ids=task_ids)


def _prune_active(*, cutoff: float, batch: int) -> None:
    """Drop active-set entries admitted before `cutoff` whose task ended or was never recorded."""
    admissions = core().admissions
    for user_id, task_ids in admissions.active_before(cutoff=cutoff).items():
        for i in range(0, len(task_ids), batch):
            owners = {}
            for task_id in task_ids[i : i + batch]:
                try:
                    owners[uuid.UUID(task_id)] = user_id
                except ValueError:
                    admissions.free(user_id=user_id, task_ids=[task_id])
            _free_ended(owners)


# One sweep may run this long between two batches before another worker may take over.
SWEEP_LOCK_SECONDS = 120


def task_recover_lost(
    *, now: float | None = None, grace: float | None = None, batch: int = 500
) -> int:
    """Queue again accepted tasks the fair queue does not hold; return how many it took.

    Called by every worker about every PQH_RECOVER_LOST_SECONDS; one at a time does the work.
    - Redis lost its data (the epoch marker is gone, see fairqueue.sweep): every PENDING
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
    sweeps = core().sweeps
    lock = sweeps.lock(timeout=SWEEP_LOCK_SECONDS)
    if not lock.acquire():
        return 0
    try:
        waiting = TaskRecord.objects.waiting()
        settled = waiting.filter(submitted_at__lt=datetime.fromtimestamp(now - grace, tz=UTC))
        if sweeps.epoch() is None:
            added = _requeue(waiting, now=now, batch=batch, lock=lock)
            _restore_active(batch=batch)
            sweeps.finish_recovery(lock, now=now, mark=now - grace)
            if added:
                logger.warning("Redis had lost the queue: %d queued tasks queued again", added)
            return added
        if sweeps.full_due():
            added = _requeue(settled, now=now, batch=batch, lock=lock)
            _prune_active(cutoff=now - grace, batch=batch)
        else:
            mark = sweeps.mark()
            if mark is not None:
                since = datetime.fromtimestamp(mark - grace, tz=UTC)
                settled = settled.filter(submitted_at__gte=since)
            added = _requeue(settled, now=now, batch=batch, lock=lock)
        sweeps.set_mark(now - grace)
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


def _requeue_one(record: TaskRecord) -> None:
    """Queue a task again as recover_lost does: fair queue (original submit time), or Celery."""
    if settings.PQH_FAIRNESS:
        task = QueuedTask(
            task_id=str(record.pk),
            seq=record.queue_seq,
            user_id=record.user_id,
            level=record.level,
            weight=record.weight,
            submitted=record.submitted_at.timestamp(),
            cost=record.cost,
        )
        task_release(core().queue.add([task], now=task.submitted).releases)
    else:
        publish(str(record.pk), 0)


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
    held = core().broker.task_ids()
    for record in rows:
        # Conditional on the claim it saw: a delivery that claims the task meanwhile wins.
        same_claim = TaskRecord.objects.filter(
            pk=record.pk, status=states.STARTED, started_at=record.started_at
        )
        if str(record.pk) in stored:
            status, done = stored[str(record.pk)]
            if same_claim.update(status=status, finished_at=done):
                notices.announce(record.pk, notices.ENDED)
                counts["agreed"] += 1
                task_free_place(task_id=str(record.pk), user_id=record.user_id)
        elif held is None or str(record.pk) in held:
            counts["held"] += 1
        elif record.attempts >= settings.PQH_MAX_ATTEMPTS:
            failed = task_finish(
                record=record, status=states.FAILURE, result=worker_lost_error(record.attempts)
            )
            counts["failed"] += int(failed)
        elif same_claim.update(status=states.PENDING, started_at=None, worker=""):
            notices.announce(record.pk, notices.QUEUED)
            logger.warning("task %s started and was never finished; queueing it again", record.pk)
            # If this fails (Redis down), the row is PENDING and unqueued: recover_lost's case.
            _requeue_one(record)
            counts["requeued"] += 1
    return counts
