"""Crashes on the real stack: nothing accepted is lost when a process dies at a bad moment."""

import os
import signal
import time

import pytest
from django_celery_results.models import TaskResult

from fairqueue.queue import QueuedTask
from pqh_site.core import core
from tasks_app.models import TaskRecord
from tests.conftest import Worker, make_user, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def accepted_row(user, level: int = 0) -> TaskRecord:
    """What task_submit writes before it queues: a PENDING history row."""
    return TaskRecord.objects.create(user=user, level=level, weight=1, count_before=0, input="x")


def ran_once(record: TaskRecord) -> bool:
    record.refresh_from_db()
    return (
        record.status == "SUCCESS"
        and TaskResult.objects.filter(task_id=str(record.pk), status="SUCCESS").count() == 1
    )


@pytest.mark.parametrize("solo_worker", [{"PQH_RELEASE_RECOVER_SECONDS": "1"}], indirect=True)
def test_a_task_picked_by_a_releaser_that_died_is_published_by_a_worker(solo_worker):
    user, _ = make_user("alice")
    record = accepted_row(user)
    # Enqueue and pick in one script, then "die" before publishing to Celery.
    task = QueuedTask(
        task_id=str(record.pk),
        seq=record.queue_seq,
        user_id=user.pk,
        level=0,
        weight=1,
        submitted=time.time(),
    )
    picked = core().queue.add([task], now=task.submitted).releases
    assert [p.task_id for p in picked] == [str(record.pk)]
    wait_for(lambda: ran_once(record), timeout=20)


@pytest.mark.parametrize("solo_worker", [{"PQH_RECOVER_LOST_SECONDS": "2"}], indirect=True)
def test_a_task_recorded_by_a_web_process_that_died_before_queueing_it_runs(solo_worker):
    user, _ = make_user("alice")
    record = accepted_row(user)  # and then the web process died
    wait_for(lambda: ran_once(record), timeout=30)


CRASH_ENV = {
    "PQH_TASK_SECONDS": "1.5",
    "PQH_TASK_TIME_LIMIT": "2",
    "PQH_VISIBILITY_TIMEOUT": "33",
    "PQH_RESTORE_SECONDS": "2",
}


@pytest.mark.parametrize("solo_worker", [CRASH_ENV], indirect=True)
def test_a_task_whose_whole_worker_host_dies_is_delivered_again(solo_worker, worker_env):
    from tasks_app.services.submission import task_submit

    user, _ = make_user("alice")
    record = task_submit(user=user, x="survive a host crash")
    wait_for(lambda: TaskRecord.objects.filter(pk=record.pk, status="STARTED").exists())
    # The host is gone: main process and pool together, no chance to give the message back.
    os.killpg(solo_worker.proc.pid, signal.SIGKILL)
    solo_worker.proc.wait()
    successor = Worker(concurrency=1, env={**worker_env, **CRASH_ENV})
    successor.start()
    try:
        # Redelivered once the visibility timeout (33 s) has passed since the first delivery.
        wait_for(lambda: ran_once(record), timeout=60)
    finally:
        successor.stop()
    # Claimed by the delivery that died and by the redelivery, which alone recorded the end.
    assert record.attempts == 2
