"""End to end on the real stack: HTTP, PostgreSQL, Redis and a real Celery worker."""

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from django.conf import settings
from django_celery_results.models import TaskResult

from tasks_app.models import TaskRecord
from tasks_app.services.submission import task_submit
from tests.conftest import make_user, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

D = settings.PQH_TASK_SECONDS


def http(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def finished(*records: TaskRecord) -> bool:
    states = TaskRecord.objects.filter(pk__in=[r.pk for r in records]).values_list(
        "status", flat=True
    )
    return all(s in ("SUCCESS", "FAILURE", "REVOKED") for s in states)


def test_submit_over_http_runs_on_a_worker_and_the_result_is_stored(celery_worker, live_server):
    _, token = make_user("alice")
    status, body = http("POST", f"{live_server.url}/task", token.key, {"x": "foo"})
    assert status == 202 and body["level"] == 0

    def done():
        _, result = http("GET", f"{live_server.url}{body['result_url']}", token.key)
        return result if result["task_status"] == "SUCCESS" else None

    result = wait_for(done, timeout=30)
    assert result["task_result"]["input_x"] == "foo"
    assert result["task_result"]["done_timestamp"] - result["task_result"][
        "init_timestamp"
    ] == pytest.approx(D, abs=0.15)
    stored = TaskResult.objects.get(task_id=body["task_id"])
    assert stored.status == "SUCCESS" and stored.task_name == "pqh.run"
    record = TaskRecord.objects.get(pk=body["task_id"])
    assert record.started_at >= record.submitted_at and record.finished_at >= record.started_at
    _, detail = http("GET", f"{live_server.url}/api/tasks/{body['task_id']}/", token.key)
    assert detail["status"] == "SUCCESS" and detail["result"]["input_x"] == "foo"
    assert detail["position"] is None and detail["wait_seconds"] >= 0


def test_newcomer_runs_before_the_rest_of_a_hog_backlog(celery_worker):
    hog, _ = make_user("hog")
    newcomer, _ = make_user("newcomer")
    backlog = [task_submit(user=hog, x=i) for i in range(8)]
    time.sleep(D / 2)  # the first hog task is running in the only slot
    new = task_submit(user=newcomer, x="hello")
    assert new.level == 0
    wait_for(lambda: finished(new, *backlog), timeout=60)
    new.refresh_from_db()
    rows = TaskRecord.objects.filter(pk__in=[b.pk for b in backlog])
    not_started_when_new_came = [r for r in rows if r.started_at > new.submitted_at]
    assert len(not_started_when_new_came) >= 5
    assert all(new.started_at < r.started_at for r in not_started_when_new_came)
    # The newcomer waited about the residual of the running task, not the backlog.
    assert (new.started_at - new.submitted_at).total_seconds() < 2 * D + 0.5


def test_aging_bounds_the_wait_of_a_hog_under_a_stream_of_fresh_users(celery_worker):
    bound = settings.PQH_MAX_WAIT_SECONDS
    hog, _ = make_user("hog")
    streamers = [make_user(f"fresh{i}")[0] for i in range(int((bound + 4) / (D * 0.75)) + 1)]
    backlog = [task_submit(user=hog, x=i) for i in range(6)]
    assert [b.level for b in backlog] == [0, 1, 1, 1, 1, 1]
    # Fresh users arrive faster than the slot serves them, so level 0 is never empty.
    stream = []
    started = time.monotonic()
    for user in streamers:
        stream.append(task_submit(user=user, x="fresh"))
        time.sleep(D * 0.75)
    stream_end = time.monotonic() - started
    wait_for(lambda: finished(*backlog, *stream), timeout=120)
    rows = list(TaskRecord.objects.filter(pk__in=[b.pk for b in backlog]))
    waits = [(r.started_at - r.submitted_at).total_seconds() for r in rows]
    # Every hog task started within the bound plus the hog's own backlog and one task in service.
    assert max(waits) <= bound + (len(backlog) + 2) * D + 1.0, waits
    # ...while fresh users were still arriving: without aging it would wait for the whole stream.
    assert max(waits) < stream_end
    assert any(r.aged for r in rows)


def test_cancelling_a_released_task_keeps_it_from_running(celery_worker, live_server):
    user, token = make_user("alice")
    running = task_submit(user=user, x="first")
    wait_for(lambda: TaskRecord.objects.filter(pk=running.pk, status="STARTED").exists())
    released = task_submit(user=user, x="second")  # sits in the broker, in the buffer
    status, body = http("DELETE", f"{live_server.url}/api/tasks/{released.pk}/", token.key)
    assert status == 200 and body["status"] == "REVOKED"
    wait_for(lambda: finished(running), timeout=30)
    follow = task_submit(user=user, x="third")
    wait_for(lambda: finished(follow), timeout=30)
    released.refresh_from_db()
    assert released.status == "REVOKED" and released.started_at is None
    assert TaskResult.objects.get(task_id=str(released.pk)).status == "REVOKED"


@pytest.mark.parametrize(
    "solo_worker", [{"PQH_TASK_CALLABLE": "tests.callables.echo_or_explode"}], indirect=True
)
def test_the_work_is_the_operators_callable_and_its_failures_are_reported(solo_worker, live_server):
    _, token = make_user("alice")
    _, ok = http("POST", f"{live_server.url}/api/tasks/", token.key, {"x": [1, 2]})
    _, bad = http("POST", f"{live_server.url}/api/tasks/", token.key, {"x": "boom"})

    def result(task):
        _, body = http("GET", f"{live_server.url}/result/{task['task_id']}", token.key)
        return body if body["task_status"] in ("SUCCESS", "FAILURE") else None

    assert wait_for(lambda: result(ok))["task_result"] == {"echo": [1, 2]}
    failed = wait_for(lambda: result(bad))
    assert failed["task_status"] == "FAILURE"
    assert failed["task_result"] == {"error": "ValueError", "message": "the service refused boom"}
    assert TaskRecord.objects.get(pk=bad["task_id"]).finished_at is not None


@pytest.mark.parametrize("solo_worker", [{"PQH_TASK_SECONDS": "1.5"}], indirect=True)
def test_a_task_whose_worker_process_dies_runs_again(solo_worker):
    user, _ = make_user("alice")
    record = task_submit(user=user, x="survive")
    wait_for(lambda: TaskRecord.objects.filter(pk=record.pk, status="STARTED").exists())
    children = subprocess.run(
        ["pgrep", "-P", str(solo_worker.proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert children
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    wait_for(lambda: finished(record), timeout=60)
    record.refresh_from_db()
    assert record.status == "SUCCESS"
    assert TaskResult.objects.get(task_id=str(record.pk)).status == "SUCCESS"
