"""/metrics: who may read it, what it shows, and that it adds up several processes."""

import base64
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from fairqueue.testing import free_port
from tasks_app.models import TaskRecord

from .conftest import ROOT, Worker, make_user, subprocess_env, wait_for


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Return {(name, sorted labels): value} of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def staff(db):
    user, token = make_user("operator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user, token


def basic(username: str) -> APIClient:
    client = APIClient()
    secret = base64.b64encode(f"{username}:pw-{username}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {secret}")
    return client


@pytest.mark.django_db
def test_only_staff_and_the_scraper_token_may_read_metrics(alice, staff, settings):
    settings.PQH_METRICS_TOKEN = "s3cret-scrape"
    anonymous = APIClient().get("/metrics")
    assert anonymous.status_code == 401 and "detail" in anonymous.json()
    assert basic("alice").get("/metrics").status_code == 403
    assert basic("operator").get("/metrics").status_code == 200
    scraper = APIClient()
    scraper.credentials(HTTP_AUTHORIZATION="Bearer s3cret-scrape")
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    # OpenMetrics for a scraper that asks for it.
    openmetrics = scraper.get("/metrics", HTTP_ACCEPT="application/openmetrics-text")
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.content.decode().rstrip().endswith("# EOF")
    scraper.credentials(HTTP_AUTHORIZATION="Bearer wrong")
    assert scraper.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_without_a_token_setting_no_bearer_gets_in(settings):
    settings.PQH_METRICS_TOKEN = ""
    scraper = APIClient()
    scraper.credentials(HTTP_AUTHORIZATION="Bearer ")
    assert scraper.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_queue_depth_by_level_is_read_at_scrape_time(alice_client, staff):
    for i in range(3):
        alice_client.post("/task", {"x": i}, format="json")  # levels 0, 1, 1
    text = basic("operator").get("/metrics").content.decode()
    assert value(text, "pqh_queued_tasks", level="0") == 1
    assert value(text, "pqh_queued_tasks", level="1") == 2
    assert value(text, "pqh_queued_tasks", level="5") == 0
    # The first was released at once to the broker; the other two wait in the fair queue.
    assert value(text, "pqh_broker_tasks", level="0") == 1
    assert value(text, "pqh_fair_queue_tasks") == 2
    assert value(text, "pqh_running_tasks", level="0") == 0
    assert value(text, "pqh_source_up", source="postgres") == 1
    assert value(text, "pqh_source_up", source="redis") == 1
    assert value(text, "pqh_submissions_total", level="1") >= 2
    assert value(text, "pqh_refusals_total", reason="user_cap") is not None


@pytest.mark.django_db
def test_a_scrape_while_redis_is_down_says_so_and_still_answers(staff, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = basic("operator").get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert value(text, "pqh_source_up", source="redis") == 0
    assert value(text, "pqh_source_up", source="postgres") == 1
    assert value(text, "pqh_broker_tasks", level="0") is None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_each_contending_users_share_is_scraped_from_what_the_worker_did(staff, celery_worker):
    # Two users contend for the one worker slot; nobody injects a row: /metrics reads the
    # shares the service computes from the history, checked against the runs themselves.
    alice, alice_token = make_user("alice")
    bob, bob_token = make_user("bob", weight=3)
    for token in (alice_token, bob_token):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        for _ in range(3):
            assert client.post("/task", {"x": 1}, format="json").status_code == 202
    wait_for(lambda: TaskRecord.objects.filter(status="SUCCESS").count() == 6, timeout=60)
    text = basic("operator").get("/metrics").content.decode()
    ran = {
        user.username: sum(
            (r.finished_at - r.started_at).total_seconds()
            for r in TaskRecord.objects.filter(user=user)
        )
        for user in (alice, bob)
    }
    total = sum(ran.values())
    for user, weight in (("alice", 1), ("bob", 3)):
        assert value(text, "pqh_user_share", user=user) == pytest.approx(
            ran[user] / total, abs=1e-3
        )
        assert value(text, "pqh_user_entitled_share", user=user) == weight / 4
        assert value(text, "pqh_user_weight", user=user) == weight
    assert value(text, "pqh_user_share", user="operator") is None  # did not contend


class WebServer:
    """The Procfile's `web:` line (through honcho, as `make run` runs it), on the test database
    and prefix, with `workers` processes."""

    def __init__(self, *, workers: int, env: dict[str, str], log: Path):
        self.port = int(os.environ.get("PQH_TEST_WEB_PORT") or free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "PQH_BIND": f"127.0.0.1:{self.port}",
            "PQH_WEB_WORKERS": str(workers),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        self.log = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "WebServer":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "honcho", "-f", "Procfile", "start", "web"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._answers, timeout=30, interval=0.1)
        return self

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=20)


def call(url: str, *, token: str = "", bearer: str = "", body: bytes | None = None) -> str:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if token:
        request.add_header("Authorization", f"Token {token}")
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_two_web_processes_and_a_worker_add_up_in_one_scrape(tmp_path, worker_env, celery_worker):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **subprocess_env(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PQH_METRICS_TOKEN": "scrape-me",
    }
    celery_worker.stop()
    worker = Worker(concurrency=1, env={**worker_env, **env})
    worker.start()
    try:
        _, token = make_user("alice")
        with WebServer(workers=2, env=env, log=tmp_path / "web.log") as web:
            submitted = []

            def submit(n: int) -> None:
                for _ in range(n):
                    submitted.append(call(f"{web.url}/task", token=token.key, body=b'{"x": 1}'))

            # Four clients at once, so that both web processes take some of the submissions.
            threads = [threading.Thread(target=submit, args=(3,)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(submitted) == 12
            wait_for(lambda: TaskRecord.objects.filter(status="SUCCESS").count() == 12, timeout=60)
            # Every scrape, whichever process answers it, counts all twelve.
            for _ in range(4):
                text = call(f"{web.url}/metrics", bearer="scrape-me")
                total = sum(
                    v for (name, _), v in samples(text).items() if name == "pqh_submissions_total"
                )
                assert total == 12
                # ...and the worker's wait and run times, written by its pool process.
                assert value(text, "pqh_task_run_seconds_count", status="SUCCESS") == 12
                waits = sum(
                    v
                    for (name, _), v in samples(text).items()
                    if name == "pqh_task_wait_seconds_count"
                )
                assert waits == 12
        # Both web processes took submissions: each process keeps its own file of counts.
        from prometheus_client.multiprocess import MultiProcessCollector

        per_process = [
            sum(
                sample.value
                for metric in MultiProcessCollector.merge([str(path)])
                for sample in metric.samples
                if sample.name == "pqh_submissions_total"
            )
            for path in metrics_dir.glob("counter_*.db")
        ]
        assert len([n for n in per_process if n]) == 2, per_process
    finally:
        worker.stop()
        celery_worker.start()
