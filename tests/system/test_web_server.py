"""The web server as `make run` starts it (the Procfile's `web:` line): limits answered in JSON."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, subprocess_env

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name}: line in the Procfile")


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker):
    """The Procfile's web process on a port of its own, run through the shell as honcho does."""
    with django_db_blocker.unblock():
        port = free_port()
        env = subprocess_env(
            PQH_BIND=f"127.0.0.1:{port}",
            PQH_WEB_WORKERS="1",
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )
    log = ROOT / ".pytest_cache" / f"web-{os.getpid()}.log"
    log.parent.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        ["bash", "-c", procfile_command("web")],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError(f"web did not start:\n{log.read_text()[-3000:]}")
        try:
            if request(port, "GET", "/api/schema/", {})[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    yield port
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def request(port: int, method: str, path: str, headers: dict[str, str]):
    """Send a request with exactly these headers (no body); return status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        # Header names are case-insensitive (granian sends them in lower case).
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def get_with_header(port: int, size: int):
    padding = "a" * (size - len("X-Padding: "))
    return request(port, "GET", "/api/usage/", {"X-Padding": padding})


@pytest.mark.parametrize("size", [9_000, 100_000])
def test_a_huge_header_is_a_json_431(web, size):
    status, headers, body = get_with_header(web, size)
    assert status == 431
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "detail": f"the header field X-Padding is {size} bytes; the limit is 8192 bytes per field"
    }


def test_past_the_server_cap_the_server_answers_itself(web):
    # granian's buffer (--http1-buffer-size, PQH_SERVER_MAX_HEADER_BYTES) is a bound with some
    # slack: far past it, the server answers on its own and never hands the request to Django.
    status, headers, body = get_with_header(web, 4 * 131072)
    assert status == 431
    assert headers.get("Content-Type") != "application/json" and b"detail" not in body


def test_a_declared_body_over_the_limit_is_a_json_413_before_it_is_sent(web):
    status, headers, body = request(
        web, "POST", "/task", {"Content-Type": "application/json", "Content-Length": "5000000"}
    )
    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"detail": "the request body is over the limit of 1048576 bytes"}
