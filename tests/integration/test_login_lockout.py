"""Guessing passwords is refused: an address with too many failed logins is locked out, on every
path that checks a password, before any hash, without locking out the real user elsewhere."""

import base64
import json
import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import hashers
from django.core.management import call_command
from django.test import Client, override_settings
from rest_framework.test import APIClient

from pqh_site import door
from users_app.authentication import auth_cache_clear

pytestmark = pytest.mark.django_db

LIMIT = 4


@pytest.fixture(autouse=True)
def small_limit():
    auth_cache_clear()
    door.forget_refusals()
    with override_settings(PQH_LOGIN_FAILURE_LIMIT=LIMIT, AXES_FAILURE_LIMIT=LIMIT):
        yield
    door.forget_refusals()


@pytest.fixture
def hashes(monkeypatch):
    """Count the password hashes computed (every check_password of any hasher)."""
    calls = []
    original = hashers.check_password

    def counting(password, encoded, setter=None, preferred="default"):
        calls.append(1)
        return original(password, encoded, setter, preferred)

    monkeypatch.setattr(hashers, "check_password", counting)
    # The user model calls it through django.contrib.auth.base_user's import.
    from django.contrib.auth import base_user

    monkeypatch.setattr(base_user, "check_password", counting)
    return calls


def basic(username, password, address="203.0.113.10") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {pair}")
    return client


def test_basic_auth_guessing_is_refused_after_the_limit_before_any_hash(alice, hashes):
    answers = [basic("alice", f"guess-{i}").get("/api/usage/") for i in range(LIMIT)]
    assert [a.status_code for a in answers] == [401] * (LIMIT - 1) + [429]
    assert len(hashes) == LIMIT  # each wrong password was checked once
    refused = basic("alice", "guess-again").get("/api/usage/")
    assert refused.status_code == 429 and len(hashes) == LIMIT  # nothing hashed now
    assert 890 <= int(refused["Retry-After"]) <= 900
    body = refused.json()
    assert body["code"] == "locked_out" and "too many failed logins" in body["detail"]
    # Even the right password is not checked from this address until the cool-off has passed.
    assert basic("alice", "pw-alice").get("/api/usage/").status_code == 429


def test_the_real_user_at_another_address_is_not_locked_out(alice):
    for i in range(LIMIT + 2):
        basic("alice", f"guess-{i}").get("/api/usage/")
    assert basic("alice", "pw-alice", address="198.51.100.20").get("/api/usage/").status_code == 200


def test_a_token_still_works_from_a_locked_out_address(alice, alice_client):
    for i in range(LIMIT):
        basic("alice", f"guess-{i}").get("/api/usage/")
    alice_client.defaults["REMOTE_ADDR"] = "203.0.113.10"
    assert alice_client.get("/api/usage/").status_code == 200


def test_guesses_at_many_names_from_one_address_add_up(alice, bob):
    for i in range(LIMIT - 1):
        basic("alice", f"guess-{i}").get("/api/usage/")
    assert basic("bob", "guess").get("/api/usage/").status_code == 429


def test_a_success_forgets_that_users_failures_at_that_address_only(alice, bob):
    for i in range(LIMIT - 1):
        assert basic("alice", f"typo-{i}").get("/api/usage/").status_code == 401
    assert basic("alice", "pw-alice").get("/api/usage/").status_code == 200
    assert not AccessAttempt.objects.filter(username="alice").exists()
    # bob's failures from the address stay, whatever alice does there.
    for i in range(LIMIT - 1):
        basic("bob", f"guess-{i}").get("/api/usage/")
    auth_cache_clear()
    assert basic("alice", "pw-alice").get("/api/usage/").status_code == 200
    assert basic("bob", "guess-x").get("/api/usage/").status_code == 429


def test_the_admin_login_form_is_refused_with_its_own_page(db):
    from tests.conftest import make_user

    make_user("operator")
    browser = Client(REMOTE_ADDR="203.0.113.30")
    statuses = []
    for i in range(LIMIT + 1):
        response = browser.post(
            "/admin/login/?next=/admin/",
            {"username": "operator", "password": f"guess-{i}"},
            HTTP_ACCEPT="text/html",
        )
        statuses.append(response.status_code)
    assert statuses == [200] * (LIMIT - 1) + [429, 429]
    page = response.content.decode()
    assert 'id="pqh-locked-out"' in page and "too many failed logins" in page
    assert "manage.py lockouts clear" in page
    assert int(response["Retry-After"]) > 0


def test_the_browsable_apis_login_is_refused_too(db):
    from tests.conftest import make_user

    make_user("carol")
    client = Client(REMOTE_ADDR="203.0.113.31")
    for i in range(LIMIT):
        response = client.post("/api-auth/login/", {"username": "carol", "password": f"guess-{i}"})
    assert response.status_code == 429


def test_a_correct_basic_request_is_hashed_once_per_process(alice, hashes):
    client = basic("alice", "pw-alice", address="198.51.100.40")
    assert [client.get("/api/usage/").status_code for _ in range(5)] == [200] * 5
    assert len(hashes) == 1


def test_a_changed_password_is_checked_again_at_once(alice):
    client = basic("alice", "pw-alice", address="198.51.100.41")
    assert client.get("/api/usage/").status_code == 200
    user = alice[0]
    user.set_password("new-secret")
    user.save()
    assert client.get("/api/usage/").status_code == 401
    assert (
        basic("alice", "new-secret", address="198.51.100.41").get("/api/usage/").status_code == 200
    )


def test_the_operator_lists_and_clears_lockouts(alice, capsys):
    for i in range(LIMIT):
        basic("alice", f"guess-{i}", address="203.0.113.50").get("/api/usage/")
    call_command("lockouts", "--json")
    listed = json.loads(capsys.readouterr().out)["lockouts"]
    assert [(row["address"], row["failures"], row["usernames"]) for row in listed] == [
        ("203.0.113.50", LIMIT, ["alice"])
    ]
    call_command("lockouts")
    assert (
        "203.0.113.50: 4 failed logins (tried: alice); locked out until" in capsys.readouterr().out
    )
    call_command("lockouts", "clear", "--address", "203.0.113.50")
    assert capsys.readouterr().out.strip() == "forgot 1 failed-login record(s)"
    door.forget_refusals()  # what a process repeats expires within door.REPLAY_SECONDS
    assert basic("alice", "pw-alice", address="203.0.113.50").get("/api/usage/").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clear"], "say what to clear: --address A, --user NAME, or --all"),
        (["clear", "--address", "nowhere"], "'nowhere' is not an IP address"),
        (["clear", "--all", "--user", "x"], "--all clears everything: give it alone"),
        (["--address", "1.2.3.4"], "--address, --user and --all go with `clear`"),
    ],
)
def test_a_wrong_lockouts_command_is_one_line(args, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("lockouts", *args)


def test_failures_and_refusals_are_counted_and_logged_without_the_password(alice, caplog):
    failed = door.LOGIN_FAILURES.labels(method="basic")._value.get()
    refused = door.REFUSALS.labels(reason="locked_out")._value.get()
    with caplog.at_level("INFO", logger="pqh.events"):
        for i in range(LIMIT + 1):
            basic("alice", f"secret-guess-{i}").get("/api/usage/")
    assert door.LOGIN_FAILURES.labels(method="basic")._value.get() == failed + LIMIT
    assert door.REFUSALS.labels(reason="locked_out")._value.get() == refused + 2
    lines = [r for r in caplog.records if r.name == "pqh.events"]
    assert [r.getMessage() for r in lines].count("login_failed") == LIMIT
    failure = next(r for r in lines if r.getMessage() == "login_failed")
    assert (failure.method, failure.user, failure.client) == ("basic", "alice", "203.0.113.10")
    assert not any("secret-guess" in str(r.__dict__) for r in caplog.records)


def test_a_failed_token_is_counted_as_a_failed_login(db):
    before = door.LOGIN_FAILURES.labels(method="token")._value.get()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert client.get("/api/usage/").status_code == 401
    assert door.LOGIN_FAILURES.labels(method="token")._value.get() == before + 1


def test_the_gate_repeats_a_lockout_for_every_password_from_the_address(alice, alice_client):
    for i in range(LIMIT):
        basic("alice", f"guess-{i}").get("/api/usage/")

    def environ(credentials: str, method: str, address: str = "203.0.113.10") -> dict:
        return {
            "REMOTE_ADDR": address,
            "HTTP_AUTHORIZATION": credentials,
            "PATH_INFO": "/task",
            "REQUEST_METHOD": method,
        }

    for guess in ("guess-0", "a-fresh-guess", "pw-alice"):  # any password, even the right one
        pair = base64.b64encode(f"alice:{guess}".encode()).decode()
        for method in ("GET", "POST"):
            refusal, left = door.replayed_refusal(environ(f"Basic {pair}", method))
            assert refusal.reason == "locked_out" and 890 < left <= 900  # Retry-After
    # Not a token from the address, nor a password from another address.
    assert door.replayed_refusal(environ(f"Token {alice[1].key}", "GET")) is None
    pair = base64.b64encode(b"alice:pw-alice").decode()
    assert door.replayed_refusal(environ(f"Basic {pair}", "GET", "198.51.100.9")) is None


def test_basic_auth_is_off_by_default():
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    probe = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.PQH_BASIC_AUTH, settings.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'])"
    )
    env = subprocess_env(DJANGO_SETTINGS_MODULE="pqh_site.settings")
    env.pop("PQH_BASIC_AUTH", None)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("False") and "BasicAuthentication" not in out
