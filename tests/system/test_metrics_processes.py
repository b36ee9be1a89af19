"""/metrics adds up several web processes and a worker: one scrape counts them all."""

import threading
import urllib.request

import pytest
from rest_framework.test import APIClient

from fairqueue.testing import free_port
from tasks_app.models import TaskRecord
from tests.conftest import Worker, make_user, subprocess_env, wait_for
from tests.servers import WebServer, call, samples, value


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


@pytest.mark.django_db(transaction=True)
def test_a_web_server_of_two_processes_without_a_directory_says_so_at_start(tmp_path):
    env = {k: v for k, v in subprocess_env().items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with WebServer(workers=2, env=env, log=tmp_path / "web.log"):
        pass
    assert "Warning: the web server runs 2 processes without PROMETHEUS_MULTIPROC_DIR" in (
        (tmp_path / "web.log").read_text()
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_host_serves_its_own_starts_and_finishes(tmp_path, worker_env, celery_worker):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    celery_worker.stop()
    worker = Worker(
        concurrency=2,
        env={
            **worker_env,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "PQH_WORKER_METRICS_PORT": str(port),
        },
    )
    worker.start()
    try:
        _, token = make_user("alice")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        for _ in range(3):
            assert client.post("/task", {"x": 1}, format="json").status_code == 202
        wait_for(lambda: TaskRecord.objects.filter(status="SUCCESS").count() == 3, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        # What the worker's pool processes counted, served from the worker's host.
        assert value(text, "pqh_task_run_seconds_count", status="SUCCESS") == 3
        assert (
            sum(v for (n, _), v in samples(text).items() if n == "pqh_task_wait_seconds_count") == 3
        )
        assert "pqh_user_share" not in text  # no user is named on a port with no login
    finally:
        worker.stop()
        celery_worker.start()
