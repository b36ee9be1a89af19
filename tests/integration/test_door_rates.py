"""Request rates at the door: per user and kind (submit, read), per address for the anonymous.

Every refusal is a 429 with Retry-After and a JSON body, decided before the request's work, and
counted in Redis so every web process shares the bucket.
"""

import base64

import pytest
import redis
from django.test import override_settings
from rest_framework.test import APIClient

from fairqueue.testing import count_redis_round_trips
from pqh_site import door
from tasks_app.models import TaskRecord
from tests.conftest import client_for
from users_app.models import Profile

pytestmark = pytest.mark.django_db

RATES = {"PQH_SUBMIT_RATE": "3/m", "PQH_READ_RATE": "5/m", "PQH_ANON_RATE": "4/m"}


@pytest.fixture(autouse=True)
def rates():
    door.forget_refusals()
    with override_settings(**RATES):
        yield
    door.forget_refusals()


def submit(client, **extra):
    return client.post("/task", {"x": 1}, format="json", **extra)


def assert_rate_limited(response, noun: str, rate: str):
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    assert response.json() == {
        "detail": f"too many {noun}: the rate is {rate}; retry after the seconds in Retry-After",
        "code": "rate_limited",
    }


def test_submissions_past_the_rate_are_refused_before_anything_is_recorded(alice, alice_client):
    assert [submit(alice_client).status_code for _ in range(3)] == [202] * 3
    response = submit(alice_client)
    assert_rate_limited(response, "submissions and cancels", "3/m")
    assert 19 <= int(response["Retry-After"]) <= 20  # one request back every 20 s
    assert TaskRecord.objects.filter(user=alice[0]).count() == 3


def test_reads_have_a_rate_of_their_own(alice_client):
    for _ in range(3):
        submit(alice_client)
    assert_rate_limited(submit(alice_client), "submissions and cancels", "3/m")
    # Writes are spent; reads are not.
    assert [alice_client.get("/api/usage/").status_code for _ in range(5)] == [200] * 5
    assert_rate_limited(alice_client.get("/api/tasks/"), "reads", "5/m")


def test_one_users_flood_leaves_another_users_rate_alone(alice_client, bob_client):
    for _ in range(5):
        alice_client.get("/api/usage/")
    assert alice_client.get("/api/usage/").status_code == 429
    assert bob_client.get("/api/usage/").status_code == 200
    assert submit(bob_client).status_code == 202


def test_an_operator_gives_a_user_rates_of_its_own(alice, alice_client, bob_client):
    Profile.objects.filter(user=alice[0]).update(submit_rate="5/m", read_rate="off")
    alice_client = client_for(alice[1])  # the profile is remembered with the token: reload
    from users_app.authentication import auth_cache_invalidate

    auth_cache_invalidate(user_id=alice[0].pk)
    assert [submit(alice_client).status_code for _ in range(6)] == [202] * 5 + [429]
    assert all(alice_client.get("/api/usage/").status_code == 200 for _ in range(20))
    assert [submit(bob_client).status_code for _ in range(4)] == [202] * 3 + [429]


def test_a_rate_of_the_admin_form_is_validated(alice):
    from django.core.exceptions import ValidationError

    profile = alice[0].profile
    profile.submit_rate = "lots"
    with pytest.raises(ValidationError, match="a rate is N/s"):
        profile.full_clean()


def test_anonymous_requests_count_per_address_before_their_401(db):
    anonymous = APIClient(REMOTE_ADDR="198.51.100.1")
    assert [anonymous.get("/api/usage/").status_code for _ in range(4)] == [401] * 4
    assert_rate_limited(
        anonymous.get("/api/usage/"),
        "anonymous requests and failed logins from your address",
        "4/m",
    )
    # Another address has its own bucket; the schema (public) counts too.
    other = APIClient(REMOTE_ADDR="198.51.100.2")
    assert other.get("/api/schema/").status_code == 200


def test_failed_token_lookups_count_against_the_address(alice, alice_client):
    guesser = APIClient(REMOTE_ADDR="198.51.100.3")
    guesser.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert [guesser.get("/api/usage/").status_code for _ in range(4)] == [401] * 4
    assert guesser.get("/api/usage/").status_code == 429
    # The real token from the same address still works: only failures are counted there.
    alice_client.defaults["REMOTE_ADDR"] = "198.51.100.3"
    assert alice_client.get("/api/usage/").status_code == 200


def test_a_forwarded_header_does_not_move_a_client_to_another_bucket(db):
    for i in range(4):
        APIClient(REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR=f"1.1.1.{i}").get("/api/usage/")
    spoofed = APIClient(REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR="9.9.9.9")
    assert spoofed.get("/api/usage/").status_code == 429


@override_settings(PQH_TRUSTED_PROXIES=["127.0.0.1"])
def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(db):
    for _ in range(4):
        APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.1").get("/api/usage/")
    proxied = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert proxied.get("/api/usage/").status_code == 429
    other = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.2")
    assert other.get("/api/usage/").status_code == 401


def test_basic_and_session_users_have_the_same_rates(alice):
    basic = APIClient()
    pair = base64.b64encode(b"alice:pw-alice").decode()
    basic.credentials(HTTP_AUTHORIZATION=f"Basic {pair}")
    assert [basic.get("/api/usage/").status_code for _ in range(6)] == [200] * 5 + [429]
    session = APIClient()
    session.login(username="alice", password="pw-alice")
    assert session.get("/api/usage/").status_code == 429  # the same user's bucket


def test_the_rate_check_is_one_redis_round_trip(alice_client, django_assert_num_queries):
    task_id = submit(alice_client).json()["task_id"]
    with django_assert_num_queries(1), count_redis_round_trips() as calls:
        assert alice_client.get(f"/result/{task_id}").status_code == 200
    assert calls == ["GET", "EVALSHA"]  # the token's version, the read bucket


def test_without_redis_the_rates_are_not_enforced(alice_client, monkeypatch):
    from fairqueue.rates import Rates

    def down(rates, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(Rates, "take", down)
    assert all(alice_client.get("/api/usage/").status_code == 200 for _ in range(8))


def test_a_refusal_is_counted_and_logged_once_in_one_line(alice_client, caplog):
    for _ in range(5):
        alice_client.get("/api/usage/")
    before = door.REFUSALS.labels(reason="rate_read")._value.get()
    with caplog.at_level("INFO", logger="pqh.events"):
        assert alice_client.get("/api/usage/").status_code == 429
    assert door.REFUSALS.labels(reason="rate_read")._value.get() == before + 1
    lines = [r for r in caplog.records if r.getMessage() == "door_refused"]
    assert len(lines) == 1
    assert (lines[0].reason, lines[0].user, lines[0].path) == ("rate_read", "alice", "/api/usage/")


def test_the_gate_is_taught_the_refusal_for_the_same_credentials(alice, alice_client):
    for _ in range(5):
        alice_client.get("/api/usage/")
    response = alice_client.get("/api/usage/")
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {alice[1].key}",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/result/x",
    }
    replayed, left = door.replayed_refusal(environ)
    assert replayed.reason == "rate_read" and 0 < left <= 12
    assert replayed.body == response.content  # the same bytes as the full answer
    assert door.replayed_refusal({**environ, "REQUEST_METHOD": "POST"}) is None  # writes are not
