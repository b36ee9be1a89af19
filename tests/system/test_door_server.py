"""The door on the real web server (the Procfile's line, two processes): one bucket for all of
them, every refusal a JSON 429, and the gate's repeats counted in /metrics."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import make_user, subprocess_env
from tests.servers import WebServer, call, samples

pytestmark = pytest.mark.django_db(transaction=True)


def get(url: str, token: str) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_two_web_processes_share_one_bucket_and_the_gate_answers_the_flood(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **subprocess_env(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PQH_METRICS_TOKEN": "scrape-me",
        "PQH_READ_RATE": "5/m",
        "PQH_SUBMIT_RATE": "off",
        "PQH_ANON_RATE": "off",
    }
    _, token = make_user("alice")
    answers: list[tuple[int, dict, bytes]] = []
    with WebServer(workers=2, env=env, log=tmp_path / "web.log") as web:

        def flood() -> None:
            for _ in range(15):
                answers.append(get(f"{web.url}/api/usage/", token.key))

        threads = [threading.Thread(target=flood) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        text = call(f"{web.url}/metrics", bearer="scrape-me")
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 5 and statuses.count(429) == 55  # one bucket for both
    refused = [(headers, body) for status, headers, body in answers if status == 429]
    assert {body for _, body in refused} == {refused[0][1]}  # the gate's bytes are the view's
    assert json.loads(refused[0][1])["code"] == "rate_limited"
    assert all(int(headers["Retry-After"]) >= 1 for headers, _ in refused)
    counted = samples(text)[("pqh_door_refusals_total", (("reason", "rate_read"),))]
    assert counted == 55
    per_process = [
        sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(path)])
            for sample in metric.samples
            if sample.name == "pqh_door_refusals_total"
        )
        for path in metrics_dir.glob("counter_*.db")
    ]
    assert len([n for n in per_process if n]) == 2, per_process  # both processes refused
