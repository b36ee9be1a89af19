"""Idempotency-Key: a retried submission returns the original task, once, however it is retried."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from fairqueue.testing import count_redis_round_trips
from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.services import submission
from tests.conftest import make_user

from .test_admission import http_post, in_parallel

pytestmark = pytest.mark.django_db


def post(client, path="/task", key="order-42", x=1):
    return client.post(path, {"x": x}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.parametrize("path", ["/task", "/api/tasks/"])
def test_a_retry_returns_the_original_task_with_200(alice, alice_client, path):
    first = post(alice_client, path)
    again = post(alice_client, path)
    assert (first.status_code, again.status_code) == (202, 200)
    original, replay = first.json(), again.json()
    assert replay["task_id"] == original["task_id"]
    assert set(replay) == set(original)
    if path == "/task":
        assert replay == original
    assert TaskRecord.objects.filter(user=alice[0]).count() == 1
    assert core().windows.count(user_id=alice[0].pk) == 1  # a replay is not counted


def test_a_retry_on_the_original_route_answers_the_original_body_after_the_task_ended(
    alice_client,
):
    original = post(alice_client).json()
    TaskRecord.objects.filter(pk=original["task_id"]).update(
        status="SUCCESS", started_at=timezone.now(), finished_at=timezone.now()
    )
    again = post(alice_client)
    assert again.status_code == 200 and again.json() == original


def test_a_retry_on_the_api_answers_the_task_as_it_is_now(alice_client, no_worker):
    # A run measured before, so that a queued task has a start estimate.
    done = post(alice_client, "/api/tasks/", key="measured").json()["task_id"]
    TaskRecord.objects.filter(pk=done).update(
        status="SUCCESS",
        started_at=timezone.now() - timedelta(seconds=2),
        finished_at=timezone.now() - timedelta(seconds=1),
    )
    original = post(alice_client, "/api/tasks/").json()
    assert original["status"] == "PENDING" and original["estimated_start_at"] is None
    pending = post(alice_client, "/api/tasks/").json()
    read = alice_client.get(f"/api/tasks/{original['task_id']}/").json()
    # As a GET shows it while queued, its start estimate included; the wait and the estimate
    # are worked out at the moment of each answer.
    assert pending["status"] == "PENDING" and pending["position"] == original["position"]
    assert pending["estimated_start_at"] is not None
    for body in (pending, read):
        body["wait_seconds"] = body["estimated_start_at"] = None
        body["priority"]["estimated_start_at"] = None
    assert pending == read
    TaskRecord.objects.filter(pk=original["task_id"]).update(
        status="SUCCESS", started_at=timezone.now(), finished_at=timezone.now()
    )
    again = post(alice_client, "/api/tasks/")
    assert again.status_code == 200
    assert again.json() == alice_client.get(f"/api/tasks/{original['task_id']}/").json()
    assert again.json()["status"] == "SUCCESS" and again.json()["position"] is None


def test_keys_are_per_user_and_a_new_key_is_a_new_task(alice_client, bob_client):
    mine, theirs = post(alice_client).json(), post(bob_client).json()
    assert mine["task_id"] != theirs["task_id"]
    other = post(alice_client, key="order-43").json()
    assert other["task_id"] != mine["task_id"]
    assert TaskRecord.objects.count() == 3


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, "caf\u00e9", "tab\there"])
def test_a_bad_key_is_a_400_and_nothing_is_recorded(alice, alice_client, key):
    response = post(alice_client, key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert TaskRecord.objects.count() == 0 and core().windows.count(user_id=alice[0].pk) == 0


def test_the_longest_key_is_accepted(alice_client):
    assert post(alice_client, key="k" * 255).status_code == 202


def test_a_retry_while_the_first_is_being_processed_gets_409(alice, alice_client):
    # The first request is admitted and not yet recorded (it is in the middle of its work).
    core().admissions.admit(
        user_id=alice[0].pk, task_id="first", now=time.time(), user_cap=100, idempotency_key="k1"
    )
    response = post(alice_client, key="k1")
    assert response.status_code == 409
    assert "still being processed" in response.json()["detail"]
    assert TaskRecord.objects.count() == 0


def test_a_retry_after_redis_lost_its_data_still_finds_the_task(alice, alice_client):
    first = post(alice_client, "/api/tasks/").json()
    core().redis.delete(core().keys.idempotency(alice[0].pk, "order-42"))  # Redis restarted empty
    again = post(alice_client, "/api/tasks/")
    assert again.status_code == 200 and again.json()["task_id"] == first["task_id"]
    assert TaskRecord.objects.count() == 1
    assert core().windows.count(user_id=alice[0].pk) == 1
    # The key is known again: the next retry is answered from Redis (after the cached token's
    # version, GET).
    with count_redis_round_trips() as calls:
        assert post(alice_client).json()["task_id"] == first["task_id"]
    assert calls == ["GET", "EVALSHA"]


def test_after_the_idempotency_period_a_key_makes_a_new_task(alice, settings):
    user = alice[0]
    then = time.time() - settings.PQH_IDEMPOTENCY_SECONDS - 60
    old = submission.task_submit(user=user, x=1, idempotency_key="daily", now=then)
    core().redis.delete(core().keys.idempotency(user.pk, "daily"))  # its time to live ran out
    new = submission.task_submit(user=user, x=1, idempotency_key="daily")
    assert not new.replayed and new.pk != old.pk
    old.refresh_from_db()
    assert old.idempotency_key is None and new.idempotency_key == "daily"


def test_a_replay_costs_two_redis_round_trips_and_one_query(
    alice_client, django_assert_num_queries
):
    post(alice_client)
    # The cached token's version (GET) and the admission script; the earlier task's row.
    with count_redis_round_trips() as calls, django_assert_num_queries(1):
        assert post(alice_client).status_code == 200
    assert calls == ["GET", "EVALSHA"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_make_one_task(live_server):
    user, token = make_user("retrier")
    headers = {"Idempotency-Key": "same-request"}
    answers = in_parallel(8, lambda: http_post(f"{live_server.url}/task", token.key, headers))
    codes = [code for code, _ in answers]
    assert codes.count(202) == 1, codes
    assert set(codes) <= {202, 200, 409}, answers
    ids = {body["task_id"] for code, body in answers if code in (200, 202)}
    assert len(ids) == 1
    assert TaskRecord.objects.filter(user=user).count() == 1
    # Once the first is done, every retry gets the same task.
    assert http_post(f"{live_server.url}/task", token.key, headers) == (
        200,
        answers[codes.index(202)][1],
    )
