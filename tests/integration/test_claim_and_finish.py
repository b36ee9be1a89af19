"""Claim and finish on the real database: one delivery owns a task, its end is one transaction."""

import pytest
from celery import states
from celery.app.task import Context
from django.db import OperationalError, connection
from django.utils import timezone
from django_celery_results.models import TaskResult

from tasks_app.models import TaskRecord
from tasks_app.selectors.tasks import task_result_value
from tasks_app.services import runs
from tasks_app.worker.db_retry import DatabaseUnavailable, db_retry

pytestmark = pytest.mark.django_db


def queued(user) -> TaskRecord:
    return TaskRecord.objects.create(user=user, level=0, weight=1, count_before=0, input="x")


def test_a_claim_repeated_after_a_lost_connection_finds_its_own_commit(alice):
    record = queued(alice[0])
    at = timezone.now()
    first = runs.task_claim(task_id=record.pk, worker="w1", now=at)
    # The connection dropped after COMMIT: the worker tries again with the same stamp.
    again = runs.task_claim(task_id=record.pk, worker="w1", now=at)
    assert first is not None and again is not None
    assert again.attempts == 1 and again.started_at == at
    # A duplicate publish of the same task is another delivery: it must not run.
    assert runs.task_claim(task_id=record.pk, worker="w2") is None


def test_a_redelivery_takes_over_and_the_old_delivery_cannot_finish(alice):
    record = queued(alice[0])
    old = runs.task_claim(task_id=record.pk, worker="lost-host")
    new = runs.task_claim(task_id=record.pk, worker="w2", redelivered=True)
    assert new.attempts == 2 and new.started_at > old.started_at
    assert not runs.task_finish(record=old, status=states.SUCCESS, result="stale")
    assert not TaskResult.objects.filter(task_id=str(record.pk)).exists()
    assert runs.task_finish(record=new, status=states.SUCCESS, result={"ok": 1})
    # Finishing again (a retry whose first COMMIT went through) changes nothing.
    assert not runs.task_finish(record=new, status=states.FAILURE, result=ValueError("x"))
    record.refresh_from_db()
    stored = TaskResult.objects.get(task_id=str(record.pk))
    assert record.status == stored.status == states.SUCCESS
    assert task_result_value(record) == {"ok": 1}


def test_a_failure_shows_its_type_and_a_short_first_line_never_the_traceback(alice):
    record = runs.task_claim(task_id=queued(alice[0]).pk, worker="w")
    try:
        raise RuntimeError("no route to 10.0.0.7\n  File '/srv/secret.py', line 3" + "!" * 500)
    except RuntimeError as exc:
        error = exc
    request = Context(task="pqh.run", hostname="w", args=[str(record.pk)], kwargs={})
    runs.task_finish(
        record=record,
        status=states.FAILURE,
        result=error,
        traceback="Traceback: secret.py",
        request=request,
    )
    record.refresh_from_db()
    assert task_result_value(record) == {
        "error": "RuntimeError",
        "message": "no route to 10.0.0.7…",
    }
    # Operators keep the traceback and the task's name in the stored result.
    stored = TaskResult.objects.get(task_id=str(record.pk))
    assert "secret.py" in stored.traceback and stored.task_name == "pqh.run"


def test_infrastructure_failures_read_as_fixed_messages(alice, settings):
    settings.PQH_TASK_TIME_LIMIT = 90
    user = alice[0]
    timed_out = runs.task_claim(task_id=queued(user).pk, worker="w")
    assert runs.task_time_limit_exceeded(task_id=str(timed_out.pk))
    timed_out.refresh_from_db()
    assert task_result_value(timed_out) == {
        "error": "TimeLimitExceeded",
        "message": "the task ran longer than its time limit of 90 s",
    }
    lost = runs.task_claim(task_id=queued(user).pk, worker="w")
    runs.task_finish(record=lost, status=states.FAILURE, result=runs.worker_lost_error(5))
    lost.refresh_from_db()
    assert task_result_value(lost)["error"] == "WorkerLostError"
    assert task_result_value(lost)["message"].startswith("the task was started 5 times")


@pytest.mark.django_db(transaction=True)
def test_db_retry_reconnects_after_the_server_dropped_the_connection(alice):
    from psycopg import connect

    from pqh_site.database import connect_params

    record = queued(alice[0])
    pid = connection.cursor().connection.info.backend_pid
    params = connect_params(connection.settings_dict)
    with connect(dbname=connection.settings_dict["NAME"], autocommit=True, **params) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    tries = []

    def step():
        tries.append(1)
        return TaskRecord.objects.get(pk=record.pk).status

    assert db_retry(step, what="reading", seconds=10) == states.PENDING
    assert len(tries) == 2  # the first try met the dropped connection


def test_db_retry_gives_up_when_its_time_is_up():
    def down():
        raise OperationalError("connection refused")

    with pytest.raises(DatabaseUnavailable, match="reading: PostgreSQL unavailable"):
        db_retry(down, what="reading", seconds=0)


@pytest.mark.parametrize(
    "status, result, traceback",
    [
        (states.SUCCESS, {"answer": [1, "two", None]}, None),
        (states.FAILURE, KeyError("missing"), "Traceback: here"),
    ],
)
def test_the_finish_stores_the_row_django_celery_results_would(alice, status, result, traceback):
    """The finish writes the result row itself (one statement); the backend's own store_result
    must have written the same columns."""
    from tasks_app.services.publishing import celery_app

    request = Context(task="pqh.run", hostname="w@h", args=["a"], kwargs={}, argsrepr="['a']")
    record = runs.task_claim(task_id=queued(alice[0]).pk, worker="w")
    assert runs.task_finish(
        record=record, status=status, result=result, traceback=traceback, request=request
    )
    ours = TaskResult.objects.get(task_id=str(record.pk))
    celery_app.backend.store_result("reference", result, status, traceback, request=request)
    theirs = TaskResult.objects.get(task_id="reference")
    columns = [
        f.attname
        for f in TaskResult._meta.concrete_fields
        if f.attname not in ("id", "task_id", "date_created", "date_done")
    ]
    assert {c: getattr(ours, c) for c in columns} == {c: getattr(theirs, c) for c in columns}
    assert ours.date_done == record.finished_at


def test_a_finish_after_a_progress_report_replaces_the_stored_progress(alice):
    from tasks_app.services.publishing import celery_app

    record = runs.task_claim(task_id=queued(alice[0]).pk, worker="w")
    celery_app.backend.store_result(str(record.pk), {"fraction": 0.5}, "PROGRESS")
    assert runs.task_finish(record=record, status=states.SUCCESS, result=7)
    stored = TaskResult.objects.get(task_id=str(record.pk))
    assert stored.status == states.SUCCESS and stored.result == "7"
