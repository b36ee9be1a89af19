"""The fair queue on a real Redis Cluster (three primaries on local ports, started here), with the
Celery broker on a plain Redis of its own (kombu has no Cluster transport): the scripts and the
reference model agree there, and a submission goes through the web server and a worker to its
end."""

import json
import random

import pytest
from django.test import override_settings

from fairqueue.testing import PrivateRedis, PrivateRedisCluster
from pqh_site.core import core
from tests.conftest import make_user, subprocess_env, wait_for
from tests.integration.test_model_vs_scripts import BUFFERS, Real, _clear
from tests.queue_sequences import RECOVER, M, run_sequence
from tests.servers import WebServer, call

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    servers = PrivateRedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("broker")).start()
    yield server
    server.stop()


def test_the_settings_refuse_a_cluster_without_a_broker_of_its_own():
    import subprocess
    import sys

    env = {**subprocess_env(), "PQH_REDIS_CLUSTER": "1", "REDIS_URL": "redis://127.0.0.1:7000/0"}
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "PQH_REDIS_CLUSTER=1 needs CELERY_BROKER_URL" in done.stderr


def test_the_scripts_and_the_model_agree_on_a_cluster(cluster, broker):
    """The differential test's random histories, on the cluster: every pick, every key's state
    and every position as the model says, with the broker's lists on the plain Redis (the
    scripts are told their lengths)."""
    with override_settings(
        REDIS_URL=cluster.url, PQH_REDIS_CLUSTER=True, CELERY_BROKER_URL=broker.url
    ):
        the_core = core()
        assert the_core.config.broker_separate
        assert the_core.broker.redis is not the_core.redis
        published = 0
        for seed in range(40):
            _clear()
            rng = random.Random(seed)
            n_ops, buffer = rng.randint(20, 60), BUFFERS[seed % len(BUFFERS)]
            teams, hold = seed % 2 == 1, seed % 3 == 0  # as the differential test's halves
            with override_settings(
                PQH_RELEASE_BUFFER=buffer,
                PQH_MAX_WAIT_SECONDS=M,
                PQH_RELEASE_RECOVER_SECONDS=RECOVER,
                PQH_CHARGE="time" if hold else "tasks",
            ):
                log = run_sequence(seed, n_ops, buffer=buffer, real=Real(), teams=teams, hold=hold)
            published += sum(1 for line in log if line.startswith("publish ['"))
        # The histories published to the broker, and its lists never reached the cluster.
        assert published > 0
        queues = core().config.broker_queues
        assert core().redis.exists(*queues) == 0
        # Every key of the deployment is in one slot, on one node.
        keys = list(core().redis.scan_iter(match=core().keys.key("*")))
        assert keys and len({core().redis.keyslot(k) for k in keys}) == 1
        _clear()


@pytest.mark.django_db(transaction=True)
def test_a_submission_goes_to_its_end_through_the_cluster(cluster, broker, tmp_path):
    """The Procfile's web and worker lines on the cluster and the plain broker: a task is
    submitted, queued in the cluster, released to the broker, run and finished once."""
    env = {
        **subprocess_env(),
        "REDIS_URL": cluster.url,
        "PQH_REDIS_CLUSTER": "1",
        "CELERY_BROKER_URL": broker.url,
        "PQH_TASK_SECONDS": "0.2",
        "PQH_WORKER_CONCURRENCY": "1",
    }
    _, token = make_user("alice")
    with WebServer(workers=1, env=env, log=tmp_path / "web.log", entries=("web", "worker")) as web:
        ids = [
            json.loads(call(f"{web.url}/task", token=token.key, body=b'{"x": 1}'))["task_id"]
            for _ in range(3)
        ]

        def results() -> list[dict]:
            return [json.loads(call(f"{web.url}/result/{i}", token=token.key)) for i in ids]

        done = wait_for(
            lambda: all(r["task_status"] == "SUCCESS" for r in results()) and results(),
            timeout=60,
            interval=0.2,
        )
        assert [r["task_result"]["input_x"] for r in done] == [1, 1, 1]
        usage = json.loads(call(f"{web.url}/api/usage/", token=token.key))
        assert usage["count"] == 3
    # The window and the queue's keys live on the cluster; nothing of pqh's is on the broker
    # but Celery's own lists.
    with override_settings(
        REDIS_URL=cluster.url, PQH_REDIS_CLUSTER=True, CELERY_BROKER_URL=broker.url
    ):
        assert list(core().redis.scan_iter(match=core().keys.window("*")))
        assert not [
            k
            for k in core().broker.redis.scan_iter(match=core().keys.key("*"))
            if not k.startswith(core().keys.key("broker"))
        ]
