"""The reconciliation sweep: started tasks whose end was lost are finished or queued again.

Real PostgreSQL and the real broker in Redis: a message a consumer holds unacknowledged sits in
kombu's `unacked` hash exactly as it does under a worker host that died.
"""

from datetime import timedelta

import pytest
from celery import states
from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from pqh_site.celery import app
from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.selectors.tasks import task_result_value
from tasks_app.services import publishing, recovery, runs
from tests.queue_state import queue_unknown

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=2)  # past the default hard time limit (1830 s) plus the sweep's margin


def started_long_ago(user, *, attempts: int = 1) -> TaskRecord:
    """A task a worker claimed two hours ago and never finished."""
    record = TaskRecord.objects.create(user=user, level=2, weight=1, count_before=7, input="x")
    claimed = runs.task_claim(task_id=record.pk, worker="gone", now=timezone.now() - LONG_AGO)
    TaskRecord.objects.filter(pk=record.pk).update(attempts=attempts)
    claimed.refresh_from_db()
    return claimed


def status_of(record: TaskRecord) -> str:
    return TaskRecord.objects.get(pk=record.pk).status


def queued_somewhere(record: TaskRecord) -> bool:
    """In the fair queue, or released to the broker."""
    known = not queue_unknown([(str(record.pk), record.queue_seq)])
    return known or str(record.pk) in core().broker.task_ids()


def test_a_task_whose_worker_and_message_are_gone_is_queued_again(alice):
    record = started_long_ago(alice[0])
    assert recovery.task_reconcile() == {"agreed": 0, "held": 0, "requeued": 1, "failed": 0}
    record.refresh_from_db()
    assert record.status == states.PENDING and record.started_at is None
    assert queued_somewhere(record)
    # A second sweep finds nothing to do: the task is queued, not started.
    assert recovery.task_reconcile()["requeued"] == 0


def test_a_task_whose_message_the_broker_still_holds_is_left_to_the_broker(alice):
    record = started_long_ago(alice[0])
    publishing.publish(str(record.pk), 0)
    queue = settings.CELERY_TASK_QUEUES[0]
    # Waiting in its queue (kombu restored it after the visibility timeout): held.
    assert recovery.task_reconcile()["held"] == 1
    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as consumer:
        message = consumer.get(timeout=5)
        # Delivered and unacknowledged, as under a worker host that was killed: held.
        assert recovery.task_reconcile()["held"] == 1
        assert status_of(record) == states.STARTED
        message.ack()
    # Acknowledged without an end recorded: only the sweep can finish it.
    assert recovery.task_reconcile()["requeued"] == 1
    assert status_of(record) == states.PENDING


def test_a_stored_final_result_makes_the_row_agree(alice):
    record = started_long_ago(alice[0])
    app.backend.store_result(str(record.pk), ValueError("bad input"), states.FAILURE)
    assert recovery.task_reconcile()["agreed"] == 1
    record.refresh_from_db()
    assert record.status == states.FAILURE and record.finished_at is not None
    assert task_result_value(record) == {"error": "ValueError", "message": "bad input"}


def test_a_task_started_too_many_times_fails_with_a_fixed_message(alice):
    record = started_long_ago(alice[0], attempts=settings.PQH_MAX_ATTEMPTS)
    assert recovery.task_reconcile()["failed"] == 1
    record.refresh_from_db()
    assert record.status == states.FAILURE
    assert TaskResult.objects.get(task_id=str(record.pk)).status == states.FAILURE
    assert task_result_value(record) == {
        "error": "WorkerLostError",
        "message": f"the task was started {settings.PQH_MAX_ATTEMPTS} times and never "
        "finished (its worker was lost); it is not run again",
    }


def test_a_task_still_within_its_hard_time_limit_is_not_touched(alice):
    record = TaskRecord.objects.create(user=alice[0], level=0, weight=1, count_before=0, input=1)
    claimed = runs.task_claim(task_id=record.pk, worker="busy")
    limit = settings.CELERY_TASK_TIME_LIMIT + settings.PQH_RECONCILE_SECONDS
    just_inside = claimed.started_at + timedelta(seconds=limit - 1)
    assert recovery.task_reconcile(now=just_inside) == {
        "agreed": 0,
        "held": 0,
        "requeued": 0,
        "failed": 0,
    }
    assert recovery.task_reconcile(now=just_inside + timedelta(seconds=2))["requeued"] == 1
