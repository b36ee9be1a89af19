"""Admission limits over HTTP: a per-user cap and a global bound, refused whole, under concurrency."""

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from celery import states

from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.services import runs
from tests.conftest import client_for, make_user
from tests.queue_state import active_count
from users_app.models import Profile

pytestmark = pytest.mark.django_db


def post(client, path="/task", x=1, **headers):
    return client.post(path, {"x": x}, format="json", **headers)


def assert_nothing_more(user, *, rows: int, waiting: int):
    """What a refusal must leave as it was: rows, window, active set, fair queue."""
    assert TaskRecord.objects.filter(user=user).count() == rows
    assert core().windows.count(user_id=user.pk) == rows
    assert active_count(user_id=user.pk) == rows
    assert core().queue.waiting_count() == waiting


@pytest.mark.parametrize("path", ["/task", "/api/tasks/"])
def test_past_the_cap_a_submission_gets_429_and_leaves_no_trace(
    alice, alice_client, path, settings
):
    settings.PQH_USER_MAX_ACTIVE = 3
    assert [post(alice_client, path).status_code for _ in range(3)] == [202] * 3
    response = post(alice_client, path)
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "user_cap" and (body["limit"], body["active"]) == (3, 3)
    assert "limit is 3" in body["detail"]
    assert response["Retry-After"] == str(settings.PQH_RETRY_AFTER_SECONDS)
    assert_nothing_more(alice[0], rows=3, waiting=2)  # the first was released to the broker


def test_a_users_own_cap_overrides_the_default(alice, alice_client, bob_client, settings):
    settings.PQH_USER_MAX_ACTIVE = 5
    Profile.objects.filter(user=alice[0]).update(max_active=1)
    assert post(alice_client).status_code == 202
    refused = post(alice_client)
    assert refused.status_code == 429 and refused.json()["limit"] == 1
    assert [post(bob_client).status_code for _ in range(2)] == [202, 202]


def test_an_ended_task_frees_its_place(alice, alice_client, settings):
    settings.PQH_USER_MAX_ACTIVE = 2
    first = post(alice_client, "/api/tasks/").json()
    second = post(alice_client, "/api/tasks/").json()
    assert post(alice_client).status_code == 429
    # Cancelled: its place is free at once.
    assert alice_client.delete(f"/api/tasks/{second['task_id']}/").status_code == 200
    third = post(alice_client, "/api/tasks/")
    assert third.status_code == 202
    assert post(alice_client).status_code == 429
    # Run and finished (what the worker does): its place is free too.
    record = runs.task_claim(task_id=first["task_id"], worker="w")
    assert runs.task_finish(record=record, status=states.SUCCESS, result=None)
    assert post(alice_client).status_code == 202
    assert active_count(user_id=alice[0].pk) == 2


def test_past_the_global_bound_submissions_get_503_queue_full(alice_client, bob, settings):
    settings.PQH_MAX_QUEUED = 3
    # One is released to the broker at once, two wait in the fair queue: three queued in all.
    assert [post(alice_client).status_code for _ in range(3)] == [202] * 3
    response = post(client_for(bob[1]), "/api/tasks/")
    assert response.status_code == 503
    assert response.json()["code"] == "queue_full"
    assert response["Retry-After"] == str(settings.PQH_RETRY_AFTER_SECONDS)
    assert_nothing_more(bob[0], rows=0, waiting=2)


def test_a_refusal_costs_two_redis_round_trips_and_no_write(alice_client, settings):
    from fairqueue.testing import count_redis_round_trips

    settings.PQH_USER_MAX_ACTIVE = 1
    post(alice_client)
    with count_redis_round_trips() as calls:
        assert post(alice_client).status_code == 429
    # The cached token's version (GET), then the admission script, which refuses.
    assert calls == ["GET", "EVALSHA"]


def http_post(url: str, token: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps({"x": 1}).encode(), method="POST")
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def in_parallel(n: int, call) -> list:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


@pytest.mark.django_db(transaction=True)
def test_parallel_submissions_never_exceed_the_cap(live_server, settings):
    settings.PQH_USER_MAX_ACTIVE = 5
    user, token = make_user("flood")
    answers = in_parallel(10, lambda: http_post(f"{live_server.url}/task", token.key))
    codes = sorted(code for code, _ in answers)
    assert codes == [202] * 5 + [429] * 5, codes
    assert TaskRecord.objects.filter(user=user).count() == 5
    assert core().windows.count(user_id=user.pk) == 5
    assert active_count(user_id=user.pk) == 5


def test_the_admin_sets_a_users_cap_beside_the_weight(client, alice):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    profile = Profile.objects.get(user=alice[0])

    def save(max_active: str):
        return client.post(
            "/admin/users_app/profile/",
            {
                "form-TOTAL_FORMS": "1",
                "form-INITIAL_FORMS": "1",
                "form-0-id": str(profile.pk),
                "form-0-weight": "1",
                "form-0-max_active": max_active,
                "_save": "Save",
            },
        )

    assert save("7").status_code == 302
    profile.refresh_from_db()
    assert profile.max_active == 7
    assert save("0").status_code == 200  # refused: the form comes back with an error
    profile.refresh_from_db()
    assert profile.max_active == 7
    page = client.get(f"/admin/auth/user/{alice[0].pk}/change/")
    assert b'name="profile-0-max_active"' in page.content
