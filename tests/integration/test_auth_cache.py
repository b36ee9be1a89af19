"""The remembered token: no SQL for the user once known, and every change seen on the next request."""

import os
import signal
import socket
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from fairqueue.testing import count_redis_round_trips
from tasks_app.models import TaskRecord
from tests.conftest import ROOT, client_for, make_user, subprocess_env, wait_for
from users_app import authentication
from users_app.authentication import auth_cache_clear, auth_cache_invalidate
from users_app.models import Profile
from users_app.services import user_set_weight

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    auth_cache_clear()
    yield
    auth_cache_clear()


def submit(client, x=1):
    response = client.post("/task", {"x": x}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def weight_of_next(client) -> int:
    """Submit one task and return the weight it was recorded with."""
    return TaskRecord.objects.get(pk=submit(client)["task_id"]).weight


def test_a_known_token_costs_one_redis_get_and_no_sql(alice_client, django_assert_num_queries):
    task_id = submit(alice_client)["task_id"]  # the first request loads and remembers alice
    with django_assert_num_queries(1), count_redis_round_trips() as calls:  # the task row
        assert alice_client.get(f"/result/{task_id}").status_code == 200
    assert calls == ["GET"]


def test_a_submission_by_a_known_token_costs_one_insert(alice_client, django_assert_num_queries):
    submit(alice_client, "warm-up")
    submit(alice_client, "warm-up 2")  # the buffer is full: the next one waits
    with django_assert_num_queries(1), count_redis_round_trips() as calls:
        submit(alice_client)
    # The version of alice's credentials, then the window and the fair queue.
    assert calls == ["GET", "EVALSHA", "EVALSHA"]


def test_the_cache_is_used_and_a_write_without_signals_needs_the_invalidation(alice, alice_client):
    assert weight_of_next(alice_client) == 1
    Profile.objects.filter(user=alice[0]).update(weight=4)  # no signal: nobody is told
    assert weight_of_next(alice_client) == 1  # so the remembered weight is still used
    auth_cache_invalidate(user_id=alice[0].pk)
    assert weight_of_next(alice_client) == 4


def test_a_weight_set_by_the_service_applies_to_the_next_submission(alice_client):
    assert weight_of_next(alice_client) == 1
    user_set_weight(username="alice", weight=3)
    assert weight_of_next(alice_client) == 3


def test_a_weight_edited_in_the_admin_applies_to_the_next_submission(alice, alice_client, client):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    assert weight_of_next(alice_client) == 1
    profile = Profile.objects.get(user=alice[0])
    response = client.post(
        "/admin/users_app/profile/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(profile.pk),
            "form-0-weight": "5",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    assert weight_of_next(alice_client) == 5


def test_a_deleted_token_is_refused_on_the_next_request(alice, alice_client):
    submit(alice_client)
    Token.objects.filter(user=alice[0]).delete()
    response = alice_client.post("/task", {"x": 1}, format="json")
    assert response.status_code == 401


def test_a_deactivated_user_is_refused_on_the_next_request(alice, alice_client):
    submit(alice_client)
    user = alice[0]
    user.is_active = False
    user.save()
    assert alice_client.get("/api/tasks/").status_code == 401


def test_a_deleted_user_is_refused_on_the_next_request(alice, alice_client):
    submit(alice_client)
    alice[0].delete()  # its token goes with it
    assert alice_client.get("/api/tasks/").status_code == 401


def test_a_lost_version_is_never_trusted(alice, alice_client):
    from tests.conftest import clear_pqh_keys

    assert weight_of_next(alice_client) == 1
    Profile.objects.filter(user=alice[0]).update(weight=2)  # unsignalled, as above
    clear_pqh_keys()  # Redis lost its keys (a restart): the version is gone
    assert weight_of_next(alice_client) == 2


def test_without_redis_tokens_are_checked_in_postgresql(alice, alice_client, monkeypatch):
    task_id = submit(alice_client)["task_id"]
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The request path's own client (no retries), pointed at a Redis that is not there.
    unreachable = authentication._client(f"redis://127.0.0.1:{port}/0")
    monkeypatch.setattr(authentication, "version_redis", lambda: unreachable)
    assert alice_client.get(f"/result/{task_id}").status_code == 200
    Token.objects.filter(user=alice[0]).delete()
    assert alice_client.get(f"/result/{task_id}").status_code == 401


def test_an_unknown_token_is_refused_and_not_remembered(alice):
    _, token = make_user("mallory")
    client = client_for(token)
    token.delete()
    assert client.get("/api/tasks/").status_code == 401
    assert client.get("/api/tasks/").status_code == 401


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_every_web_process_sees_a_weight_change_on_the_next_request(tmp_path):
    """Two gunicorn processes each remember alice; a committed change reaches both at once."""
    import http.client
    import json
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection as db_connection

    _, token = make_user("alice")
    port = free_port()
    access = tmp_path / "access.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "pqh_site.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", "2"]
        + ["--access-logfile", str(access), "--access-logformat", "%(p)s %(q)s"],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=(tmp_path / "web.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def post(n: int) -> int:
        """Submit request number n over a new connection; return the weight recorded."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(
                "POST",
                f"/task?n={n}",
                json.dumps({"x": n}),
                {"Authorization": f"Token {token.key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == 202, body
        finally:
            conn.close()
        try:
            return TaskRecord.objects.get(pk=body["task_id"]).weight
        finally:
            db_connection.close()  # this pool thread's own connection

    def served_by(numbers: range) -> set[str]:
        """The worker pids that served these requests (from the access log)."""
        wanted = {f"n={n}" for n in numbers}

        def lines():
            found = [ln.split() for ln in access.read_text().splitlines() if ln.strip()]
            found = [f for f in found if len(f) == 2 and f[1] in wanted]
            return found if len(found) == len(wanted) else None

        return {pid for pid, _ in wait_for(lines, timeout=10)}

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        wait_for(up, timeout=30)
        with ThreadPoolExecutor(4) as pool:
            # Four at a time, so both sync workers serve alice and remember her.
            assert set(pool.map(post, range(40))) == {1}
            assert len(served_by(range(40))) == 2
            user_set_weight(username="alice", weight=7)
            assert set(pool.map(post, range(40, 80))) == {7}
            assert len(served_by(range(40, 80))) == 2
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
