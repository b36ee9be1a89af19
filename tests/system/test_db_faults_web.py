"""PostgreSQL fails under the web: every answer is a 503 JSON with Retry-After, nothing is left.

In process, the test's own database connection is terminated by the server
(pg_terminate_backend) after authentication, so the failure comes at the INSERT, after the
window has counted the submission. Over HTTP, the web server as the Procfile runs it reaches
PostgreSQL through a TcpProxy that the test cuts and restores.
"""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from fairqueue.testing import TcpProxy, free_port
from pqh_site.core import core
from pqh_site.database import connect_params
from tasks_app.models import TaskRecord
from tests.conftest import subprocess_env, wait_for
from tests.conftest import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def terminate_my_connection() -> None:
    """Have the server drop this process's connection, as a restart or a failover would."""
    pid = connection.cursor().connection.info.backend_pid
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **connect_params(db)) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "the database is unavailable; try again shortly",
        "code": "unavailable",
    }
    assert response["Retry-After"] == str(settings.PQH_UNAVAILABLE_RETRY_AFTER_SECONDS)


def nothing_queued() -> bool:
    return core().queue.waiting_count() == 0 and sum(core().queue.broker_lengths()) == 0


def test_a_submission_postgresql_cannot_record_is_refused_and_uncounted(alice):
    user, _ = alice
    assert user.profile.weight == 1  # loaded, as token authentication loads it
    client = APIClient()
    client.force_authenticate(user)
    terminate_my_connection()
    try:
        for path in ("/task", "/api/tasks/"):
            assert_unavailable(client.post(path, {"x": "lost?"}, format="json"))
    finally:
        connection.close()  # reconnect for the checks
    assert core().windows.count(user_id=user.pk) == 0  # the window entry was taken back
    assert nothing_queued()
    assert not TaskRecord.objects.exists()


def test_reading_while_postgresql_is_gone_is_503_not_500(alice):
    user, _ = alice
    record = TaskRecord.objects.create(user=user, level=0, weight=1, count_before=0, input=1)
    client = APIClient()
    client.force_authenticate(user)
    terminate_my_connection()
    try:
        for path in (f"/result/{record.pk}", f"/api/tasks/{record.pk}/", "/api/tasks/"):
            assert_unavailable(client.get(path))
    finally:
        connection.close()


def call(url: str, token: str, body: dict | None = None):
    """Return status, headers (names case-insensitive: the server may send lower case), body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


@pytest.mark.integration
def test_the_web_server_answers_503_while_postgresql_is_cut_and_recovers(alice):
    user, token = alice
    proxy = TcpProxy(int(settings.DATABASES["default"]["PORT"] or 5432)).start()
    port = free_port()
    env = subprocess_env(
        DATABASE_URL=database_url().replace(f":{proxy.upstream[1]}/", f":{proxy.port}/"),
        PQH_BIND=f"127.0.0.1:{port}",
        PQH_WEB_WORKERS="1",
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    )
    web = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", "Procfile", "start", "web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up():
            try:
                return call(f"{base}/api/usage/", token.key)[0] == 200
            except OSError:
                return False

        wait_for(up, timeout=30, interval=0.2)
        status, _, accepted = call(f"{base}/task", token.key, {"x": "before"})
        assert status == 202
        proxy.cut()
        for url, body in (
            (f"{base}/task", {"x": "during"}),
            (f"{base}/api/tasks/", {"x": "during"}),
            (f"{base}{accepted['result_url']}", None),
        ):
            status, headers, answer = call(url, token.key, body)
            assert (status, answer["code"]) == (503, "unavailable"), (url, status, answer)
            assert int(headers["Retry-After"]) > 0
        proxy.restore()
        # The server drops the broken connection and reconnects by itself.
        assert call(f"{base}/task", token.key, {"x": "after"})[0] == 202
        assert call(f"{base}{accepted['result_url']}", token.key)[0] == 200
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
        proxy.stop()
    assert (
        core().windows.count(user_id=user.pk) == 2
    )  # before and after; the refused ones uncounted
    assert TaskRecord.objects.filter(user=user).count() == 2
