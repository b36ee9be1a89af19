"""Submitting over HTTP: identity, validation, levels, records and what each costs."""

import json
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from fairqueue.admission import Admissions
from fairqueue.queue import FairQueue
from fairqueue.testing import count_redis_round_trips
from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.services import recovery, submission
from tests.queue_state import active_count, queue_unknown

pytestmark = pytest.mark.django_db


def post_task(client, body, path="/task"):
    return client.post(path, body, format="json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/task"),
        ("post", "/api/tasks/"),
        ("get", "/api/tasks/"),
        ("get", "/api/usage/"),
        ("get", "/result/00000000-0000-0000-0000-000000000000"),
    ],
)
def test_anonymous_calls_get_401(method, path):
    response = getattr(APIClient(), method)(path, {"x": 1}, format="json")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_seed_route_accepts_a_task_and_answers_like_the_original(alice, alice_client):
    response = post_task(alice_client, {"x": "foo"})
    assert response.status_code == 202
    body = response.json()
    # The original's four keys, and where to wait for the result instead of polling.
    assert set(body) == {"task_id", "result_url", "user_id", "level", "wait_url", "events_url"}
    assert body["user_id"] == "alice"
    assert body["level"] == 0
    assert body["result_url"] == f"/result/{body['task_id']}"
    record = TaskRecord.objects.get(pk=body["task_id"])
    assert (record.user, record.input, record.level, record.weight, record.count_before) == (
        alice[0],
        "foo",
        0,
        1,
        0,
    )


def test_a_hog_climbs_the_levels(alice_client):
    levels = [post_task(alice_client, {"x": i}).json()["level"] for i in range(17)]
    assert levels == [0] + [1] * 5 + [2] * 10 + [3]


def test_a_weight_change_applies_to_the_next_submission_without_restart(alice, alice_client):
    for i in range(6):
        post_task(alice_client, {"x": i})
    assert post_task(alice_client, {"x": "seventh"}).json()["level"] == 2
    call_command("set_weight", "alice", "6", stdout=open("/dev/null", "w"))
    assert post_task(alice_client, {"x": "eighth"}).json()["level"] == 1  # 7 // 6


def test_a_body_user_id_naming_someone_else_is_refused(alice_client, bob):
    response = post_task(alice_client, {"x": 1, "user_id": "bob"})
    assert response.status_code == 403
    assert "user_id" in json.dumps(response.json())
    assert TaskRecord.objects.count() == 0
    assert post_task(alice_client, {"x": 1, "user_id": "alice"}).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "x"), ({"y": 1}, "x"), ([1, 2], "non_field_errors")],
)
def test_a_missing_x_is_a_400_that_says_so(alice_client, body, field):
    response = post_task(alice_client, body, path="/api/tasks/")
    assert response.status_code == 400
    assert field in response.json()


def test_malformed_json_is_a_400(alice_client):
    response = alice_client.post("/task", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize("x", [None, 0, "", [1, {"a": None}], {"nested": {"deep": [1, 2, 3]}}])
def test_x_may_be_any_json_value(alice_client, x):
    response = post_task(alice_client, {"x": x}, path="/api/tasks/")
    assert response.status_code == 202
    assert TaskRecord.objects.get(pk=response.json()["task_id"]).input == x


def test_an_oversized_x_is_refused_and_not_counted(alice, alice_client, settings):
    settings.PQH_MAX_INPUT_BYTES = 100
    response = post_task(alice_client, {"x": "a" * 200})
    assert response.status_code == 400
    assert "limit is 100 bytes" in response.json()["x"][0]
    assert TaskRecord.objects.count() == 0
    assert core().windows.count(user_id=alice[0].pk) == 0


def test_a_submission_the_queue_cannot_take_is_refused_whole(alice, alice_client, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(FairQueue, "add", broken)
    response = post_task(alice_client, {"x": 1})
    assert response.status_code == 503
    assert "unavailable" in response.json()["detail"]
    assert TaskRecord.objects.count() == 0
    assert core().windows.count(user_id=alice[0].pk) == 0
    assert active_count(user_id=alice[0].pk) == 0


def test_an_accepted_task_is_queued_in_redis(alice_client):
    body = post_task(alice_client, {"x": 1}).json()
    # The first task is released at once to the level-0 Celery queue (the buffer is empty).
    level0 = list(core().config.broker_queues)[0]
    messages = [json.loads(m) for m in core().redis.lrange(level0, 0, -1)]
    assert [m["headers"]["id"] for m in messages] == [body["task_id"]]
    # The next one waits in the fair queue until a worker takes the first.
    second = post_task(alice_client, {"x": 2}).json()
    assert core().queue.waiting_count() == 1
    assert second["level"] == 1


def test_basic_and_session_authentication_work(alice):
    basic = APIClient()
    basic.credentials(
        HTTP_AUTHORIZATION="Basic " + __import__("base64").b64encode(b"alice:pw-alice").decode()
    )
    assert post_task(basic, {"x": 1}).status_code == 202
    session = APIClient(enforce_csrf_checks=True)
    assert session.login(username="alice", password="pw-alice")
    assert session.get("/api/tasks/").status_code == 200
    # A session POST without the CSRF token is refused.
    assert post_task(session, {"x": 1}).status_code == 403


def test_fifo_mode_puts_everything_at_one_level(alice_client, settings):
    settings.PQH_FAIRNESS = False
    levels = [post_task(alice_client, {"x": i}).json()["level"] for i in range(8)]
    assert levels == [0] * 8
    assert core().queue.waiting_count() == 0


def test_a_submission_costs_one_sql_query(alice_client, django_assert_num_queries):
    post_task(alice_client, {"x": "warm-up"})
    # The token's user and weight are remembered (tests/integration/test_auth_cache.py): the task row only.
    with django_assert_num_queries(1):
        assert post_task(alice_client, {"x": 1}).status_code == 202


def test_a_submission_that_waits_costs_three_redis_round_trips(alice_client):
    post_task(alice_client, {"x": "warm-up"})  # released to the broker: the buffer is now full
    post_task(alice_client, {"x": "warm-up 2"})
    with count_redis_round_trips() as calls:
        assert post_task(alice_client, {"x": 1}).status_code == 202
    # The version of the remembered credentials; one script counts the window; one enqueues
    # and tries a release.
    assert calls == ["GET", "EVALSHA", "EVALSHA"]


def test_the_service_is_the_one_entry_point(alice):
    record = submission.task_submit(user=alice[0], x={"from": "service"})
    assert record.level == 0 and record.input == {"from": "service"}
    assert settings.PQH_LEVEL_QUEUES[0].endswith(".level0")


def test_a_task_recorded_but_never_queued_is_queued_again(alice):
    # A web process died between writing the record and queueing it.
    lost = TaskRecord.objects.create(user=alice[0], level=1, weight=1, count_before=1, input="x")
    queued = submission.task_submit(user=alice[0], x="fine")
    later = time.time() + 60
    assert recovery.task_recover_lost(now=later) == 1
    assert recovery.task_recover_lost(now=later) == 0  # now known: not queued twice
    lost.refresh_from_db()
    pairs = [(str(lost.pk), lost.queue_seq), (str(queued.pk), queued.queue_seq)]
    assert queue_unknown(pairs) == []


def test_a_submission_is_refused_whole_when_redis_is_down(alice_client, monkeypatch):
    import redis

    def down(admissions, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(Admissions, "admit", down)
    response = post_task(alice_client, {"x": 1})
    assert response.status_code == 503
    assert "Connection refused" in response.json()["detail"]
    assert response.json()["code"] == "unavailable"
    assert response["Retry-After"] == str(settings.PQH_UNAVAILABLE_RETRY_AFTER_SECONDS)
    assert TaskRecord.objects.count() == 0


@pytest.mark.parametrize("name", ["celery", "_kombu.binding.celery", "pqh:q:meta", "unacked"])
def test_user_names_that_look_like_broker_keys_submit_normally(name, alice_client):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from tests.conftest import client_for
    from users_app.services import username_problem

    # "pqh:q:meta" breaks the rule of user names (create_api_user and the admin refuse it), but
    # a user made another way, or before the rule, may still carry such a name.
    user = get_user_model().objects.create(username=name)
    assert (username_problem(name) is None) == (":" not in name)
    client = client_for(Token.objects.create(user=user))
    assert [post_task(client, {"x": i}).json()["level"] for i in range(2)] == [0, 1]
    assert post_task(alice_client, {"x": 0}).json()["level"] == 0
