"""Shared personas and the real parts: PostgreSQL (pytest-django), Redis and a Celery worker.

Tests come in three tiers: unit/ (no PostgreSQL, no Redis: pure code, in seconds; `make
test-unit`), integration/ (the real PostgreSQL, Redis and Celery workers) and system/ (whole
processes: the web server, the browser, faults, the benchmarks' smoke runs). Nothing here
touches a service unless a test asks for it.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from pqh_site.core import core
from users_app.services import api_user_create

ROOT = Path(__file__).resolve().parent.parent


def clear_pqh_keys() -> None:
    """Delete every key under the test prefix (windows, fair queue, broker queues).

    The integration and system tiers call it before every test (their conftest.py); the unit
    tier needs no Redis at all.
    """
    redis = core().redis
    names = list(redis.scan_iter(match=core().keys.key("*"), count=1000))
    if names:
        redis.delete(*names)


def make_user(username: str, weight: int = 1):
    user, token, _ = api_user_create(username=username, weight=weight, password="pw-" + username)
    return user, token


def client_for(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def alice(db):
    """Alice: an ordinary user of weight 1."""
    return make_user("alice")


@pytest.fixture
def bob(db):
    """Bob: another ordinary user, who must never see Alice's tasks."""
    return make_user("bob")


@pytest.fixture
def charlie(db):
    """Charlie: a heavy user with weight 6."""
    return make_user("charlie", weight=6)


@pytest.fixture
def alice_client(alice):
    return client_for(alice[1])


@pytest.fixture
def bob_client(bob):
    return client_for(bob[1])


class Worker:
    """A real `celery worker` subprocess on the test database and the test Redis prefix."""

    running: "set[Worker]" = set()  # so a test can pause whichever workers are up (no_worker)

    def __init__(self, *, concurrency: int, env: dict[str, str], args: tuple[str, ...] = ()):
        self.concurrency = concurrency
        self.env = env
        self.args = args  # more options of `celery worker` (e.g. --include a module)
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / ".pytest_cache" / f"worker-{os.getpid()}.log"

    def start(self) -> None:
        self.log.parent.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pqh_site",
                "worker",
                "-c",
                str(self.concurrency),
                "--without-mingle",
                "--without-gossip",
                "-l",
                "info",
                "-n",
                f"pqhtest-{os.getpid()}@%h",
                *self.args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log.read_text()[-3000:]}")
            if " ready." in self.log.read_text():
                Worker.running.add(self)
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"worker did not become ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        Worker.running.discard(self)
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def test_database_url() -> str:
    """The URL of the database pytest-django made for this run (not the one `make run` uses)."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child process (a worker, a command) on the test database and prefix."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        PQH_TEST_REDIS_PREFIX=settings.PQH_REDIS_PREFIX,
        PQH_SECRET_KEY=settings.SECRET_KEY,
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@pytest.fixture
def scratch_database(django_db_setup):
    """Make URLs of extra databases named after the test database; drop them afterwards."""
    import psycopg
    from psycopg import sql

    from pqh_site.database import connect_params

    db = dict(settings.DATABASES["default"])
    made: list[str] = []

    def make(suffix: str) -> str:
        name = f"{db['TEST']['NAME']}_{suffix}"
        made.append(name)
        user = db["USER"] or ""
        return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"

    yield make
    with psycopg.connect(dbname="postgres", autocommit=True, **connect_params(db)) as conn:
        for name in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def worker_env(django_db_setup, django_db_blocker) -> dict[str, str]:
    """The environment a worker needs to use the test database and the test Redis prefix."""
    env = subprocess_env()
    env.update(
        PQH_TASK_SECONDS=str(settings.PQH_TASK_SECONDS),
        PQH_MAX_WAIT_SECONDS=str(settings.PQH_MAX_WAIT_SECONDS),
    )
    return env


@pytest.fixture(scope="session")
def celery_worker(worker_env):
    """One real worker with a single slot, shared by the integration tests."""
    worker = Worker(concurrency=1, env=worker_env)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def solo_worker(worker_env, celery_worker, request):
    """A worker with settings of its own (`request.param`), alone on the queues while it runs."""
    celery_worker.stop()
    worker = Worker(concurrency=1, env={**worker_env, **getattr(request, "param", {})})
    worker.start()
    yield worker
    worker.stop()
    celery_worker.start()


@pytest.fixture
def no_worker():
    """No worker runs during the test, so queued tasks stay queued; paused ones restart after."""
    paused = list(Worker.running)
    for worker in paused:
        worker.stop()
    yield
    for worker in paused:
        worker.start()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
