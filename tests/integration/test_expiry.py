"""Expiry: finished tasks older than PQH_HISTORY_DAYS go, in batches; queued and running stay.

The prune runs on the real database; beat's schedule is read as Celery beat builds it, and a
real `celery beat` drives a real worker to prune.
"""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from celery import states
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from pqh_site.celery import app
from tasks_app.models import TaskRecord
from tasks_app.services import actions
from tests.conftest import subprocess_env, wait_for

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)


def task(user, status: str, *, at) -> TaskRecord:
    """A task submitted at `at`; if it has ended, it ended then, with its result stored."""
    ended = status in (states.SUCCESS, states.FAILURE, states.REVOKED)
    record = TaskRecord.objects.create(
        user=user,
        level=0,
        weight=1,
        count_before=0,
        input=1,
        status=status,
        submitted_at=at,
        started_at=at if status != states.PENDING else None,
        finished_at=at if ended else None,
    )
    if ended:
        app.backend.store_result(str(record.pk), {"ok": 1}, status)
    return record


def test_prune_deletes_old_finished_tasks_with_their_results_in_batches(alice):
    user, _ = alice
    now = timezone.now()
    old = now - 31 * DAY
    expired = [
        task(user, status, at=old - i * DAY)
        for i, status in enumerate(
            [states.SUCCESS, states.FAILURE, states.REVOKED, states.SUCCESS, states.SUCCESS]
        )
    ]
    kept = [
        task(user, states.SUCCESS, at=now - 29 * DAY),  # not old enough
        task(user, states.PENDING, at=now - 90 * DAY),  # queued: never touched, however old
        task(user, states.STARTED, at=now - 90 * DAY),  # running
    ]
    with CaptureQueriesContext(connection) as queries:
        assert actions.task_prune(now=now, days=30, batch=2) == 5
    deletes = [
        q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "tasks_app_taskrecord"')
    ]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert set(TaskRecord.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == [str(kept[0].pk)]
    assert not TaskResult.objects.filter(task_id__in=[str(r.pk) for r in expired]).exists()


def test_one_prune_run_is_bounded_and_the_next_goes_on(alice):
    user, _ = alice
    now = timezone.now()
    ages = {task(user, states.SUCCESS, at=now - days * DAY).pk: days for days in range(40, 45)}
    assert actions.task_prune(now=now, days=30, batch=2, max_batches=1) == 2
    # Oldest first.
    assert sorted(ages[pk] for pk in TaskRecord.objects.values_list("pk", flat=True)) == [
        40,
        41,
        42,
    ]
    assert actions.task_prune(now=now, days=30, batch=2) == 3
    assert not TaskRecord.objects.exists()


def test_celerys_own_cleanup_drops_results_older_than_the_history(alice):
    kept = task(alice[0], states.SUCCESS, at=timezone.now())
    app.backend.store_result("not-a-pqh-task", "x", states.SUCCESS)
    TaskResult.objects.filter(task_id="not-a-pqh-task").update(
        date_done=timezone.now() - (settings.PQH_HISTORY_DAYS + 1) * DAY
    )
    app.backend.cleanup()  # what beat's daily celery.backend_cleanup runs
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == [str(kept.pk)]


def test_beat_schedules_the_prune_beside_celerys_result_cleanup(tmp_path):
    scheduler = PersistentScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    try:
        prune = scheduler.schedule["pqh-prune"]
        assert prune.task == "pqh.prune"
        assert prune.schedule.run_every == timedelta(seconds=settings.PQH_PRUNE_EVERY_SECONDS)
        assert scheduler.schedule["celery.backend_cleanup"].task == "celery.backend_cleanup"
    finally:
        scheduler.close()
    # Beat's state lives outside the source tree.
    assert not Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).resolve().is_relative_to(ROOT)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_beat_has_a_worker_prune_old_history(alice, celery_worker, tmp_path):
    user, _ = alice
    now = timezone.now()
    expired = task(user, states.SUCCESS, at=now - (settings.PQH_HISTORY_DAYS + 5) * DAY)
    queued = task(user, states.PENDING, at=now - (settings.PQH_HISTORY_DAYS + 5) * DAY)
    recent = task(user, states.SUCCESS, at=now)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pqh_site", "beat", "-l", "info"],
        cwd=ROOT,
        env=subprocess_env(
            PQH_PRUNE_EVERY_SECONDS="1",
            PQH_BEAT_SCHEDULE_FILE=str(tmp_path / "beat-schedule"),
        ),
        stdout=(tmp_path / "beat.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: not TaskRecord.objects.filter(pk=expired.pk).exists(), timeout=30)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=15)
    assert "Sending due task pqh-prune (pqh.prune)" in (tmp_path / "beat.log").read_text()
    assert set(TaskRecord.objects.values_list("pk", flat=True)) == {queued.pk, recent.pk}
    assert not TaskResult.objects.filter(task_id=str(expired.pk)).exists()
    assert list(Path(ROOT).glob("celerybeat-schedule*")) == []
