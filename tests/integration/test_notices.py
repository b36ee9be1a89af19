"""Every path that moves a task announces it after its commit, on one channel: waiters re-read."""

import json
import time

import pytest
from celery import states
from django.db import transaction
from django.utils import timezone

from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.services import actions, recovery, runs
from tasks_app.services.submission import task_submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notices():
    pubsub = core().redis.pubsub()
    pubsub.subscribe(core().keys.notices)
    pubsub.get_message(timeout=1)  # the subscription's confirmation

    def heard(timeout: float = 2.0) -> list[tuple[str, str]]:
        got, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message and message["type"] == "message":
                data = json.loads(message["data"])
                got.append((data["task"], data["kind"]))
            elif got:
                break
        return got

    yield heard
    pubsub.close()


def test_a_claim_and_a_finish_are_announced_after_their_commit(alice, notices, no_worker):
    record = task_submit(user=alice[0], x=1)
    with transaction.atomic():
        claimed = runs.task_claim(task_id=str(record.pk), worker="w")
        assert notices(timeout=0.3) == []  # not before the commit
    assert notices() == [(str(record.pk), "started")]
    runs.task_finish(record=claimed, status=states.SUCCESS, result=1)
    assert notices() == [(str(record.pk), "ended")]


def test_a_cancel_is_announced(alice, notices, no_worker):
    record = task_submit(user=alice[0], x=1)
    actions.task_cancel(user=alice[0], task_id=record.pk)
    assert notices() == [(str(record.pk), "ended")]


def test_the_reconciliations_announce_what_they_change(alice, notices, no_worker, settings):
    record = task_submit(user=alice[0], x=1)
    long_ago = timezone.now() - timezone.timedelta(hours=2)
    notices(timeout=0.3)

    def lost_with_its_worker(**fields) -> None:
        # Started long ago, and the broker holds no message of it: its end was lost.
        TaskRecord.objects.filter(pk=record.pk).update(
            status=states.STARTED, started_at=long_ago, **fields
        )
        core().redis.delete(*core().config.broker_queues)

    lost_with_its_worker()
    assert recovery.task_reconcile()["requeued"] == 1
    assert notices() == [(str(record.pk), "queued")]
    lost_with_its_worker(attempts=settings.PQH_MAX_ATTEMPTS)
    assert recovery.task_reconcile()["failed"] == 1
    assert notices() == [(str(record.pk), "ended")]
