"""Flower, as the Procfile runs it: behind a password, and not at all without one."""

import base64
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from fairqueue.testing import free_port
from tests.conftest import ROOT, subprocess_env, wait_for


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} entry in the Procfile")


def flower_env(**extra: str) -> dict[str, str]:
    env = subprocess_env(**extra)
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    env.pop("FLOWER_BASIC_AUTH", None)
    env.update(extra)
    return env


def status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.django_db
def test_flower_does_not_start_without_a_password():
    proc = subprocess.run(
        ["sh", "-c", procfile_command("flower")],
        env=flower_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert re.search(r"FLOWER_BASIC_AUTH: set it to user:password", proc.stderr), proc.stderr


@pytest.mark.integration
@pytest.mark.django_db
def test_flower_refuses_without_the_password_and_accepts_with_it(tmp_path):
    port = int(os.environ.get("PQH_TEST_FLOWER_PORT") or free_port())
    log = tmp_path / "flower.log"
    proc = subprocess.Popen(
        ["sh", "-c", procfile_command("flower")],
        env=flower_env(FLOWER_BASIC_AUTH="ops:s3cret", PQH_FLOWER_PORT=str(port)),
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                return status(f"{base}/") > 0
            except OSError:
                return False

        wait_for(answers, timeout=60, interval=0.2)
        for page in ("/", "/tasks", "/api/tasks"):
            assert status(f"{base}{page}") == 401
            assert status(f"{base}{page}", "ops:wrong") == 401
        assert status(f"{base}/", "ops:s3cret") == 200
        assert status(f"{base}/tasks", "ops:s3cret") == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
