"""Stopping the stack with tasks running is calm and safe: a few lines, and the tasks it cut off
run again, once each, when the stack starts again (make run's Ctrl-C; a SIGTERM to a worker)."""

import json
import re

import pytest
from django_celery_results.models import TaskResult

from tasks_app.models import TaskRecord
from tests.conftest import make_user, subprocess_env, wait_for
from tests.servers import WebServer, call

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STACK = ("web", "worker")


def stack(tmp_path, name: str) -> WebServer:
    env = {
        **subprocess_env(),
        "PQH_TASK_SECONDS": "4",
        "PQH_WORKER_CONCURRENCY": "2",
        "PQH_BEAT_SCHEDULE_FILE": str(tmp_path / "beat"),
        "PQH_SUBMIT_RATE": "off",
    }
    return WebServer(workers=1, env=env, log=tmp_path / f"{name}.log", entries=STACK)


def test_a_stop_with_tasks_running_is_a_few_lines_and_they_run_again_once(tmp_path, no_worker):
    _, token = make_user("alice")
    first = stack(tmp_path, "first")
    with first:
        ids = [
            json.loads(call(f"{first.url}/task", token=token.key, body=b'{"x": "work"}'))["task_id"]
            for _ in range(3)
        ]
        wait_for(lambda: TaskRecord.objects.filter(status="STARTED").count() == 2, timeout=60)
        first.stop()  # as Ctrl-C on make run: honcho stops every process it started
    log = first.log.read_text()
    assert "web.1 stopped (rc=0)" in log and "worker.1 stopped (rc=0)" in log, log[-3000:]
    stopping = log[log.index("SIGTERM") :]
    assert "Traceback" not in stopping and "WorkerLostError" not in stopping, stopping
    worker_lines = [line for line in stopping.splitlines() if " worker.1 " in line]
    assert len(worker_lines) <= 6, stopping
    (said,) = [line for line in worker_lines if "event=worker_stopping" in line]
    assert "running=2" in said and "runs again when a worker starts" in said
    cut = set(TaskRecord.objects.filter(status="STARTED").values_list("pk", flat=True))
    assert len(cut) == 2 and {str(pk) for pk in cut} <= set(ids)
    assert re.search(r"tasks=\S+", said).group(0).count(",") == 1

    with stack(tmp_path, "second"):
        wait_for(lambda: TaskRecord.objects.filter(status="SUCCESS").count() == 3, timeout=90)
    for task_id in ids:
        # Ended once: one stored result, the history's status; the cut ones ran a second time.
        assert [r.status for r in TaskResult.objects.filter(task_id=task_id)] == ["SUCCESS"]
    attempts = dict(TaskRecord.objects.values_list("pk", "attempts"))
    assert {attempts[pk] for pk in cut} == {2}
