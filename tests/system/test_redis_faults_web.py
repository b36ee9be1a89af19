"""Redis fails under the web after a submission was recorded and queued: it is still accepted.

The fair queue lives on a redis-server of the test's own (`fairqueue/testing.py`), stopped at the
exact step under test; the broker is the test Redis, as in every other test.
"""

import pytest
from rest_framework.test import APIClient

from fairqueue.queue import FairQueue
from fairqueue.testing import PrivateRedis
from tasks_app.models import TaskRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_redis(tmp_path, settings):
    server = PrivateRedis(tmp_path / "redis").start()
    shared, settings.REDIS_URL = settings.REDIS_URL, server.url
    yield server
    settings.REDIS_URL = shared
    server.stop()


def test_a_submission_recorded_and_queued_is_accepted_if_redis_dies_before_its_release_is_confirmed(
    private_redis, alice, monkeypatch, no_worker
):
    user, token = alice
    confirm = FairQueue.confirm
    confirming = []

    def redis_dies_first(queue, task_ids):
        confirming.append(list(task_ids))
        private_redis.stop()  # the real server goes away between publish and confirm
        return confirm(queue, task_ids)

    monkeypatch.setattr(FairQueue, "confirm", redis_dies_first)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.post("/api/tasks/", {"x": 1}, format="json")

    assert confirming and confirming[0], "the submission released nothing: no confirm to fail"
    assert response.status_code == 202, response.content
    task_id = response.json()["task_id"]
    assert confirming[0] == [task_id]
    # Recorded, and waiting for the worker that takes its published message.
    assert TaskRecord.objects.filter(pk=task_id, status="PENDING").exists()
