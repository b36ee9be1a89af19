"""The wait server (the Procfile's `waits:` line, ASGI) on the real stack: a long poll answers
as soon as the task ends, a stream tells each move, and limits and errors are JSON."""

import asyncio
import contextlib
import http.client
import json
import os
import resource
import threading
import time
import urllib.parse
import uuid

import pytest

from fairqueue.testing import free_port
from tasks_app.models import TaskRecord
from tests.conftest import make_user, subprocess_env, wait_for
from tests.servers import WebServer, call

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(tmp_path):
    """web and waits, as make run starts them, on the test database and prefix."""
    port = free_port()
    env = {
        **subprocess_env(),
        "PQH_WAIT_BIND": f"127.0.0.1:{port}",
        "PQH_WAIT_URL": f"http://127.0.0.1:{port}",
        "PQH_WAIT_MAX_PER_USER": "2",
        "PQH_STREAM_HEARTBEAT_SECONDS": "0.5",
    }
    with WebServer(workers=1, env=env, log=tmp_path / "web.log", entries=("web", "waits")) as web:
        wait_for(lambda: get(port, "/healthz")[0] == 200, timeout=30, interval=0.2)
        yield web, port


def get(port: int, path: str, token: str = "", headers: dict | None = None, timeout: float = 40):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "GET", path, headers={**({"Authorization": f"Token {token}"} if token else {}),
                                  **(headers or {})}
        )  # fmt: skip
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    except OSError:
        return 0, {}, b""
    finally:
        conn.close()


def submit(web, token) -> str:
    return json.loads(call(f"{web.url}/task", token=token, body=b'{"x": "w"}'))["task_id"]


@pytest.mark.parametrize("solo_worker", [{"PQH_TASK_SECONDS": "1.5"}], indirect=True)
def test_a_long_poll_answers_when_the_task_ends(servers, solo_worker):
    web, port = servers
    _, token = make_user("alice")
    task_id = submit(web, token.key)
    started = time.monotonic()
    status, headers, body = get(port, f"/result/{task_id}?wait=20", token.key)
    took = time.monotonic() - started
    assert status == 200 and json.loads(body)["task_status"] == "SUCCESS"
    assert headers["Preference-Applied"] == "wait=20"
    assert took < 10  # the task's 1.5 s and its start, not the 20 s asked for
    record = TaskRecord.objects.get(pk=task_id)
    # The answer came after the end was committed, and soon after it.
    assert record.finished_at.timestamp() <= time.time()
    status, _, body = get(port, f"/api/tasks/{task_id}/", token.key, {"Prefer": "wait=5"})
    assert status == 200 and json.loads(body)["status"] == "SUCCESS"


def test_a_wait_ends_after_its_seconds_with_the_state_then(servers, no_worker):
    web, port = servers
    _, token = make_user("alice")
    task_id = submit(web, token.key)
    started = time.monotonic()
    status, headers, body = get(port, f"/api/tasks/{task_id}/", token.key, {"Prefer": "wait=1"})
    assert status == 200 and json.loads(body)["status"] == "PENDING"
    assert 0.9 < time.monotonic() - started < 5
    assert headers["Preference-Applied"] == "wait=1"


def test_bad_waits_others_tasks_and_no_login_are_json_errors(servers, no_worker):
    web, port = servers
    _, alice = make_user("alice")
    _, bob = make_user("bob")
    task_id = submit(web, alice.key)
    for wait in ("-1", "31", "abc", "nan"):
        status, _, body = get(port, f"/result/{task_id}?wait={wait}", alice.key)
        assert (
            status == 400
            and "wait must be a number of seconds from 0 to 30" in json.loads(body)["detail"]
        )
    assert get(port, f"/result/{task_id}?wait=1", bob.key)[0] == 404
    assert get(port, f"/result/{uuid.uuid4()}?wait=1", alice.key)[0] == 404
    status, headers, body = get(port, f"/result/{task_id}?wait=1")
    assert status == 401 and "detail" in json.loads(body)


def test_a_user_may_hold_a_bounded_number_of_waits(servers, no_worker):
    web, port = servers
    _, token = make_user("alice")
    task_id = submit(web, token.key)
    held = [threading.Thread(target=get, args=(port, f"/result/{task_id}?wait=4", token.key))
            for _ in range(2)]  # fmt: skip
    for thread in held:
        thread.start()
    time.sleep(1.0)
    status, headers, body = get(port, f"/result/{task_id}?wait=1", token.key)
    for thread in held:
        thread.join()
    assert status == 429 and json.loads(body)["code"] == "too_many_waits"
    assert int(headers["Retry-After"]) > 0


def events_of(raw: bytes) -> list[tuple[str, str]]:
    out = []
    for block in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], fields["id"]))
    return out


@pytest.mark.parametrize("solo_worker", [{"PQH_TASK_SECONDS": "2.5"}], indirect=True)
def test_a_stream_tells_each_move_and_closes_after_the_end(servers, solo_worker):
    web, port = servers
    _, token = make_user("alice")
    task_id = submit(web, token.key)
    status, headers, raw = get(port, f"/api/tasks/{task_id}/events", token.key)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert raw.startswith(b"retry: ")
    kinds = [event for event, _ in events_of(raw)]
    assert kinds[-1] == "ended" and kinds.count("ended") == 1
    assert "progress" in kinds  # limited_f reports every tenth of its run
    order = ["queued", "started", "progress", "ended"]
    assert [order.index(k) for k in kinds] == sorted(order.index(k) for k in kinds)
    # Reconnecting after the end with the last id seen: nothing is sent again, the stream ends.
    status, _, raw = get(
        port, f"/api/tasks/{task_id}/events", token.key, {"Last-Event-ID": "ended"}
    )
    assert status == 200 and events_of(raw) == []
    # With an earlier id, the current state only.
    _, _, raw = get(port, f"/api/tasks/{task_id}/events", token.key, {"Last-Event-ID": "started"})
    assert [event for event, _ in events_of(raw)] == ["ended"]


def test_a_quiet_stream_sends_heartbeats(servers, no_worker):
    web, port = servers
    _, token = make_user("alice")
    task_id = submit(web, token.key)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "GET", f"/api/tasks/{task_id}/events", headers={"Authorization": f"Token {token.key}"}
    )
    response = conn.getresponse()
    seen = b""
    deadline = time.monotonic() + 5
    while b": heartbeat" not in seen and time.monotonic() < deadline:
        seen += response.read1(4096)
    conn.close()
    assert b"event: queued" in seen and b": heartbeat" in seen


def get_url(url: str, token: str, headers: dict | None = None):
    """GET an absolute URL on 127.0.0.1 (no redirect followed)."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return get(parts.port, path, token, headers)


@pytest.mark.parametrize("solo_worker", [{"PQH_TASK_SECONDS": "1.5"}], indirect=True)
def test_the_answers_links_wait_and_watch_and_the_web_server_sends_waits_on(servers, solo_worker):
    web, port = servers
    _, token = make_user("alice")
    accepted = json.loads(call(f"{web.url}/task", token=token.key, body=b'{"x": "w"}'))
    task_id = accepted["task_id"]
    # The web server holds no wait: it answers 307 to the same path on the wait server.
    web_port = urllib.parse.urlsplit(web.url).port
    status, headers, body = get(web_port, f"/result/{task_id}?wait=20", token.key)
    assert status == 307
    assert headers["Location"] == f"http://127.0.0.1:{port}/result/{task_id}?wait=20"
    assert json.loads(body)["wait_url"] == headers["Location"]
    # The submission's wait_url, followed as given, answers with the end.
    assert accepted["wait_url"] == f"http://127.0.0.1:{port}/result/{task_id}?wait=30"
    status, _, body = get_url(accepted["wait_url"], token.key)
    assert status == 200 and json.loads(body)["task_status"] == "SUCCESS"
    # So do the detail's, and its events_url streams the end.
    detail = json.loads(call(f"{web.url}/api/tasks/{task_id}/", token=token.key))
    status, _, body = get_url(detail["wait_url"], token.key)
    assert status == 200 and json.loads(body)["status"] == "SUCCESS"
    status, _, raw = get_url(detail["events_url"], token.key)
    assert status == 200 and [event for event, _ in events_of(raw)] == ["ended"]


def wait_server_threads() -> int:
    """Threads of the wait server's processes (granian's main and its workers: pqh_site.asgi)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"pqh_site.asgi:application" not in f.read():
                    continue
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return total


async def hold_polls(port: int, token: str, task_id: str, count: int, until) -> None:
    """Open `count` long polls of the task (20 connections opening at a time), then run
    `until()` in a thread while they are held; close them."""
    gate = asyncio.Semaphore(20)
    request = (
        f"GET /result/{task_id}?wait=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Token {token}\r\n\r\n"
    ).encode()

    async def one():
        async with gate:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        return writer

    writers = await asyncio.gather(*(one() for _ in range(count)))
    try:
        await asyncio.to_thread(until)
    finally:
        for writer in writers:
            writer.close()


@pytest.fixture
def roomy_servers(tmp_path):
    """web and waits with room for many waits from one user."""
    port = free_port()
    env = {
        **subprocess_env(),
        "PQH_WAIT_BIND": f"127.0.0.1:{port}",
        "PQH_WAIT_URL": f"http://127.0.0.1:{port}",
        "PQH_WAIT_MAX_PER_USER": "5000",
    }
    with WebServer(workers=1, env=env, log=tmp_path / "web.log", entries=("web", "waits")) as web:
        wait_for(lambda: get(port, "/healthz")[0] == 200, timeout=30, interval=0.2)
        yield web, port


def test_a_thousand_waits_are_all_held_without_a_thread_each(roomy_servers, no_worker):
    """More waits than granian's default backpressure (1,024 requests a worker) are all held,
    the server still answers beside them, and they cost no thread each (pqh_site/asgi.py)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    web, port = roomy_servers
    _, token = make_user("alice")
    task_id = submit(web, token.key)
    get(port, f"/result/{task_id}?wait=0", token.key)  # the first request's imports
    idle = wait_server_threads()
    count = 1100
    seen = {}

    def measure():
        def all_held():
            status, _, body = get(port, "/healthz", timeout=5)
            seen["waiting"] = json.loads(body)["waiting"] if status == 200 else None
            return seen["waiting"] == count

        with contextlib.suppress(AssertionError):  # the assertions below say what was seen
            wait_for(all_held, timeout=25, interval=0.5)
        seen["threads"] = wait_server_threads()

    asyncio.run(hold_polls(port, token.key, task_id, count, measure))
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert seen["waiting"] == count, seen
    assert idle > 0 and seen["threads"] - idle < 30, (idle, seen["threads"])
