"""Redis restarted empty: the service keeps accepting, and every queued task runs once, in order.

Everything here uses a redis-server of the test's own (`fairqueue/testing.py`), never the machine's.
"""

import json
import subprocess
import sys
import time

import pytest
import redis
from django_celery_results.models import TaskResult

from fairqueue.testing import PrivateRedis
from pqh_site.core import core
from tasks_app.models import TaskRecord
from tests.conftest import ROOT, Worker, make_user, subprocess_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TASK_SECONDS = 1.0


@pytest.fixture
def private_stack(tmp_path, worker_env, celery_worker):
    """A private Redis and the environment of processes that use it as store and broker.

    The shared test worker is stopped meanwhile: its sweeps would queue this test's rows on the
    shared Redis.
    """
    celery_worker.stop()
    server = PrivateRedis(tmp_path / "redis").start()
    env = {
        **worker_env,
        "REDIS_URL": server.url,
        "CELERY_BROKER_URL": server.url,
        "PQH_TASK_SECONDS": str(TASK_SECONDS),
        "PQH_RECOVER_LOST_SECONDS": "1",
    }
    yield server, env
    server.stop()
    celery_worker.start()


def submit_in_child(env: dict, user_id: int, times: list[float]) -> list[dict]:
    """Submit one task per time through services.task_submit, in a process using `env`."""
    code = f"""
import json, django
django.setup()
from django.contrib.auth import get_user_model
from tasks_app.services.submission import task_submit
user = get_user_model().objects.get(pk={user_id})
out = []
for i, at in enumerate({times!r}):
    r = task_submit(user=user, x=i, now=at)
    out.append({{"id": str(r.pk), "count_before": r.count_before}})
print(json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(**{k: env[k] for k in ("REDIS_URL", "CELERY_BROKER_URL")}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tasks_queued_when_redis_restarts_empty_all_run_once_in_submit_order(
    private_stack, settings
):
    server, env = private_stack
    user, _ = make_user("alice")
    worker = Worker(concurrency=1, env=env)
    worker.start()
    try:
        now = time.time()
        hours_ago = now - 2 * settings.PQH_VISIBILITY_TIMEOUT
        # Three accepted two hours ago (older than the visibility timeout), four just now.
        times = [hours_ago, hours_ago + 1, hours_ago + 2] + [now + i * 0.01 for i in range(4)]
        before = submit_in_child(env, user.pk, times)
        first = before[0]["id"]
        wait_for(lambda: TaskRecord.objects.filter(pk=first, status="STARTED").exists())

        server.restart_empty()  # the running task keeps running; everything queued is gone

        # The service keeps accepting, and the window counts start again.
        after = submit_in_child(env, user.pk, [time.time()])
        assert after[0]["count_before"] == 0

        ids = [t["id"] for t in before + after]
        wait_for(
            lambda: TaskRecord.objects.filter(pk__in=ids, status="SUCCESS").count() == len(ids),
            timeout=90,
        )
        # The queue was rebuilt and everything ended: the user holds no place under the cap.
        # A worker frees a place just after it commits the end, so wait for the last one.
        private = redis.Redis(port=server.port, decode_responses=True)
        wait_for(lambda: private.zcard(core().keys.key("act", user.pk)) == 0, timeout=10)
        assert private.exists(core().keys.key("epoch"))
    finally:
        worker.stop()

    for task_id in ids:  # each ran exactly once
        assert TaskResult.objects.filter(task_id=task_id).count() == 1
    rows = {str(r.pk): r for r in TaskRecord.objects.filter(pk__in=ids)}
    started = sorted((t["id"] for t in before), key=lambda t: rows[t].started_at)
    assert started == [t["id"] for t in before]


def test_worker_survives_redis_going_away_while_it_runs_a_task_and_waits_for_more(
    private_stack, settings
):
    """Redis goes down for a second while one slot runs a task and the other waits for more.

    The running task's message is unacknowledged and the idle slot's channel sits in BRPOP.
    The worker must reconnect and take the next task; before pqh_site/broker_transport.py,
    kombu raised AttributeError while closing the lost connection and the worker shut down.
    """
    server, env = private_stack
    user, _ = make_user("alice")
    worker = Worker(concurrency=2, env={**env, "PQH_TASK_SECONDS": "3"})
    worker.start()
    try:
        first = submit_in_child(env, user.pk, [time.time()])[0]["id"]
        wait_for(lambda: TaskRecord.objects.filter(pk=first, status="STARTED").exists())

        server.restart_empty(down_seconds=1.0)

        wait_for(lambda: TaskRecord.objects.filter(pk=first, status="SUCCESS").exists(), timeout=30)
        second = submit_in_child(env, user.pk, [time.time()])[0]["id"]
        try:
            wait_for(
                lambda: TaskRecord.objects.filter(pk=second, status="SUCCESS").exists(), timeout=30
            )
        except AssertionError:
            pytest.fail(f"the task after the restart never ran:\n{worker.log.read_text()[-3000:]}")
        assert worker.proc.poll() is None
        log = worker.log.read_text()
    finally:
        worker.stop()
    assert "Unrecoverable error" not in log, log[-3000:]
