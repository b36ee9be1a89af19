"""The Celery tasks: run one accepted submission (claim, release the next, work, finish); prune."""

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

from celery import shared_task, states
from celery.exceptions import (
    Ignore,
    Reject,
    SoftTimeLimitExceeded,
    TaskPredicate,
    TimeLimitExceeded,
    WorkerLostError,
)
from celery.signals import task_failure
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from kombu.exceptions import EncodeError

from .models import TaskRecord
from .ops import events
from .services import actions, notices, publishing, runs
from .worker.db_retry import DATABASE_ERRORS, DatabaseUnavailable, db_retry
from .worker.progress import PROGRESS, ProgressReporter

logger = logging.getLogger(__name__)

# Left for the last retry's sleep (at most 2 s) and a margin, before the soft time limit.
_LIMIT_MARGIN_SECONDS = 3.0


def _soft_time_limit(request) -> float:
    """The soft time limit this delivery runs under: the message's, else the worker's."""
    _, soft = request.timelimit or (None, None)
    return float(soft or settings.CELERY_TASK_SOFT_TIME_LIMIT)


def _retry_budget(limit: float) -> Callable[[], float]:
    """Return a clock of how long a database step may still be retried in this task.

    At most PQH_DB_RETRY_SECONDS, and never past the soft time `limit`, which Celery counts
    from the start of the task: retrying beyond it would end in a time-limit failure for work
    that never ran.
    """
    started = time.monotonic()

    def remaining() -> float:
        left = limit - (time.monotonic() - started) - _LIMIT_MARGIN_SECONDS
        return max(0.0, min(settings.PQH_DB_RETRY_SECONDS, left))

    return remaining


def _release_next(task_id: str, *, claimed: bool) -> None:
    """Announce the start (if claimed) and release the next task now that this one left the
    broker, in one Redis round trip before the publish; the tick retries a failed release."""
    try:
        publishing.task_started_release(started=task_id, claimed=claimed)
    except Exception:
        logger.warning("releasing after %s failed; the worker tick will release", task_id)


class _Outcome(NamedTuple):
    state: str
    result: Any  # the return value, or the error to store
    traceback: str | None = None  # for operators (stored, never shown through the API)
    raised: BaseException | None = None  # the work's own exception, raised again once stored
    seconds: float | None = None  # spent in the work callable; None if it did not run


def _work(record: TaskRecord, limit: float, progress: ProgressReporter) -> _Outcome:
    """Run the work and say how it ended, and how long it took (failures included)."""
    started = time.monotonic()

    def took() -> float:
        return time.monotonic() - started

    try:
        result = runs.task_execute(record, progress=progress)
        return _Outcome(states.SUCCESS, result, seconds=took())
    except SoftTimeLimitExceeded as exc:
        error = runs.time_limit_error(limit)
        return _Outcome(states.FAILURE, error, raised=exc, seconds=took())
    except Exception as exc:
        # Celery's own control-flow exceptions would make the worker requeue or drop the
        # message; the end is recorded, so they are not raised again.
        raised = None if isinstance(exc, TaskPredicate | WorkerLostError) else exc
        return _Outcome(states.FAILURE, exc, traceback.format_exc(), raised, took())


@shared_task(bind=True, name=publishing.RUN_TASK, acks_late=True, ignore_result=True)
def run_task(self, task_id: str) -> Any:
    """Run one accepted submission through PQH_TASK_CALLABLE and record its end.

    Celery stores nothing for this task (ignore_result): task_finish stores the result and
    marks the history row in one transaction. While PostgreSQL is unreachable the claim and the
    finish are retried in place; when the time is up the message goes back to the broker
    unacknowledged (Reject with requeue), so a task is never acknowledged without an end.
    """
    limit = _soft_time_limit(self.request)
    budget = _retry_budget(limit)
    delivery = self.request.delivery_info or {}
    claimed_at = timezone.now()
    try:
        record = db_retry(
            lambda: runs.task_claim(
                task_id=task_id,
                worker=self.request.hostname or "",
                redelivered=bool(delivery.get("redelivered")),
                now=claimed_at,
                announce=False,  # with the next release, below
            ),
            what=f"claiming {task_id}",
            seconds=budget(),
        )
    except (DatabaseUnavailable, SoftTimeLimitExceeded) as exc:
        raise Reject(f"not claimed: {exc}", requeue=True) from exc
    # This task just left the broker, so there is room for the next one.
    _release_next(task_id, claimed=record is not None)
    if record is None:
        # Cancelled, or a duplicate of a delivery that already ran: store nothing. If the task
        # has ended, free its place under the cap: a finish that committed but lost its answer
        # and ran out of retries handed its message back without freeing it.
        runs.task_free_place_if_ended(task_id=task_id)
        raise Ignore()
    events.event_started(record)
    if record.attempts > settings.PQH_MAX_ATTEMPTS:
        outcome = _Outcome(states.FAILURE, runs.worker_lost_error(record.attempts - 1))
    else:

        def store_progress(meta: dict) -> None:
            self.update_state(state=PROGRESS, meta=meta)
            notices.announce(task_id, notices.PROGRESS)

        progress = ProgressReporter(
            store_progress,
            interval=settings.PQH_PROGRESS_INTERVAL,
        )
        outcome = _work(record, limit, progress)

    def finish() -> bool:
        try:
            return runs.task_finish(
                record=record,
                status=outcome.state,
                result=outcome.result,
                traceback=outcome.traceback,
                request=self.request,
                run_seconds=outcome.seconds,
            )
        except EncodeError as exc:
            # The work returned something JSON cannot hold: that is the work's failure.
            return runs.task_finish(
                record=record,
                status=states.FAILURE,
                result=TypeError(f"the task's result cannot be stored as JSON: {exc}"),
                request=self.request,
                run_seconds=outcome.seconds,
            )

    try:
        finished = db_retry(finish, what=f"finishing {task_id}", seconds=budget())
    except (DatabaseUnavailable, SoftTimeLimitExceeded) as exc:
        # The end is not recorded: give the message back so that the task runs again.
        raise Reject(f"not finished: {exc}", requeue=True) from exc
    if finished:
        # task_finish set the end on `record` (status, finished_at): logged without a query.
        events.event_finished(record)
    if outcome.raised is not None:
        # Recorded already; raising makes Celery log it and send its task-failed event.
        raise outcome.raised
    # Celery stores nothing for this task, but logs what it returns ("succeeded in 0.2s: …"):
    # the user's result only where an operator asked for task data in the logs.
    if outcome.state == states.FAILURE or not settings.PQH_LOG_TASK_DATA:
        return None
    return outcome.result


@task_failure.connect(sender=run_task)
def _record_hard_time_limit(
    sender=None, task_id: str | None = None, exception: BaseException | None = None, **kwargs
) -> None:
    """Record a task that its worker killed at the hard time limit (no task code ran to do it).

    Runs in the worker's main process, which must not wait on PostgreSQL: one try, and the
    reconciliation sweep (services.recovery.task_reconcile) records the end if it fails.
    """
    if not task_id or not isinstance(exception, TimeLimitExceeded):
        return
    close_old_connections()
    try:
        runs.task_time_limit_exceeded(task_id=task_id)
    except DATABASE_ERRORS:
        logger.warning("could not record the time limit of %s; the sweep will", task_id)


@shared_task(name="pqh.prune", ignore_result=True)
def prune_history() -> int:
    """Delete finished tasks older than PQH_HISTORY_DAYS (scheduled by Celery beat)."""
    return actions.task_prune()
