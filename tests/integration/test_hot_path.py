"""The request path's lean parts give what the ORM's general path gave, in the counts asserted.

- A poll (`GET /result/<id>`) reads the task and its stored result or progress in ONE query,
  whatever state the task is in, with the same values as the detail route shows.
- A submission's INSERT, prepared once, writes the row the ORM would have written.
- The task serializers write their fields out directly: the keys are the declared fields.
"""

import uuid

import pytest
from celery import states
from django.utils import timezone

from fairqueue.testing import count_redis_round_trips
from pqh_site.celery import app as celery_app
from tasks_app.api.serializers import TaskDetailSerializer, TaskSerializer
from tasks_app.models import TaskRecord
from tasks_app.selectors.detail import task_view
from tasks_app.services.runs import time_limit_error
from tasks_app.services.submission import task_submit
from tasks_app.worker.progress import PROGRESS

pytestmark = pytest.mark.django_db


def _ended(record: TaskRecord, status: str, result) -> None:
    """Finish a task as a worker would: its row final and its result stored."""
    TaskRecord.objects.filter(pk=record.pk).update(
        status=status, started_at=timezone.now(), finished_at=timezone.now()
    )
    celery_app.backend.store_result(str(record.pk), result, status)


def _poll(client, record, django_assert_num_queries) -> dict:
    client.get(f"/result/{record.pk}")  # the token's user is then remembered
    with django_assert_num_queries(1), count_redis_round_trips() as calls:
        response = client.get(f"/result/{record.pk}")
    assert response.status_code == 200
    assert calls == ["GET"]  # the remembered credentials' version
    body = response.json()
    detail = client.get(f"/api/tasks/{record.pk}/").json()  # the ORM's path to the same values
    assert (body["task_status"], body["task_result"]) == (detail["status"], detail["result"])
    assert body.get("progress") == detail["progress"]
    return body


def test_a_poll_of_a_queued_task_is_one_query(alice, alice_client, django_assert_num_queries):
    record = task_submit(user=alice[0], x=1)
    body = _poll(alice_client, record, django_assert_num_queries)
    assert body == {"task_id": str(record.pk), "task_status": "PENDING", "task_result": None}


def test_a_poll_of_a_finished_task_reads_its_result_in_the_same_query(
    alice, alice_client, django_assert_num_queries
):
    record = task_submit(user=alice[0], x=1)
    _ended(record, states.SUCCESS, {"answer": [1, 2]})
    body = _poll(alice_client, record, django_assert_num_queries)
    assert body["task_status"] == "SUCCESS" and body["task_result"] == {"answer": [1, 2]}


def test_a_poll_of_a_failed_task_shows_the_error_summary_only(
    alice, alice_client, django_assert_num_queries
):
    record = task_submit(user=alice[0], x=1)
    _ended(record, states.FAILURE, time_limit_error(3))
    body = _poll(alice_client, record, django_assert_num_queries)
    assert body["task_result"] == {
        "error": "TimeLimitExceeded",
        "message": "the task ran longer than its time limit of 3 s",
    }


def test_a_poll_of_a_running_task_shows_its_progress_in_the_same_query(
    alice, alice_client, django_assert_num_queries
):
    record = task_submit(user=alice[0], x=1)
    TaskRecord.objects.filter(pk=record.pk).update(status=states.STARTED, started_at=timezone.now())
    report = {"fraction": 0.5, "message": "half", "updated_at": 1.0}
    celery_app.backend.store_result(str(record.pk), report, PROGRESS)
    body = _poll(alice_client, record, django_assert_num_queries)
    assert body["task_status"] == PROGRESS and body["progress"] == report


def test_a_poll_of_another_users_or_an_unknown_task_is_404(alice, bob_client):
    record = task_submit(user=alice[0], x=1)
    _ended(record, states.SUCCESS, "alice's")
    assert bob_client.get(f"/result/{record.pk}").status_code == 404
    assert bob_client.get(f"/result/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize("x", [None, {"a": [1, "b", None]}, "text", 3.5])
def test_the_prepared_insert_writes_the_row_the_orm_reads_back(alice, x):
    record = task_submit(user=alice[0], x=x, idempotency_key="key-" + str(x))
    stored = TaskRecord.objects.get(pk=record.pk)
    assert not record._state.adding and record.queue_seq == stored.queue_seq > 0
    for name in ("user_id", "level", "weight", "count_before", "input", "status", "aged"):
        assert getattr(stored, name) == getattr(record, name), name
    assert stored.submitted_at == record.submitted_at and stored.idempotency_key == "key-" + str(x)
    assert (stored.attempts, stored.worker, stored.started_at) == (0, "", None)
    # JSON null is stored as SQL NULL, as the ORM stores it.
    assert TaskRecord.objects.filter(pk=record.pk, input__isnull=True).exists() == (x is None)


def test_the_serializers_answer_exactly_their_declared_fields(alice, rf):
    record = task_submit(user=alice[0], x={"k": 1})
    request = rf.get("/api/tasks/")
    data = TaskSerializer(record, context={"request": request}).data
    assert list(data) == list(TaskSerializer().fields)
    data = TaskDetailSerializer(task_view(record), context={"request": request}).data
    assert list(data) == list(TaskDetailSerializer().fields)
    assert data["url"] == f"http://testserver/api/tasks/{record.pk}/"
    assert data["result_url"] == f"http://testserver/result/{record.pk}"
    assert data["submitted_at"].endswith("Z") and data["x"] == {"k": 1}
    assert data["status"] == "PENDING" and data["started_at"] is None


def test_the_submissions_insert_is_prepared_on_its_connection(alice, settings):
    """With PQH_DB_PREPARE (the default) PostgreSQL binds the parameters and prepares a
    statement run PQH_DB_PREPARE_THRESHOLD times: the INSERT is then not parsed again."""
    from django.db import connection

    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    for i in range(threshold + 1):
        task_submit(user=alice[0], x=i)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any(s.startswith('INSERT INTO "tasks_app_taskrecord"') for s in statements), statements
