"""Progress: the work reports how far it is, and a poll shows it while the task runs."""

import json

import pytest

from tasks_app.services.submission import task_submit
from tests.conftest import make_user, wait_for


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "solo_worker",
    [{"PQH_TASK_SECONDS": "2.5", "PQH_PROGRESS_INTERVAL": "0.3", "PQH_LOG_JSON": "1"}],
    indirect=True,
)
def test_a_running_task_shows_its_progress_then_its_result(solo_worker):
    from tests.conftest import client_for

    user, token = make_user("alice")
    client = client_for(token)
    record = task_submit(user=user, x="slow")

    def progress_seen():
        body = client.get(f"/api/tasks/{record.pk}/").json()
        return body if body["status"] == "PROGRESS" else None

    first = wait_for(progress_seen, timeout=30)
    assert 0 < first["progress"]["fraction"] < 1 and " of 2.5 s" in first["progress"]["message"]
    assert first["result"] is None and first["position"] is None
    seed = client.get(f"/result/{record.pk}").json()
    assert seed["task_status"] == "PROGRESS" and seed["task_result"] is None
    assert 0 < seed["progress"]["fraction"] < 1

    def moved_on():
        body = progress_seen()
        return body and body["progress"]["fraction"] > first["progress"]["fraction"]

    wait_for(moved_on, timeout=10)

    def done():
        body = client.get(f"/api/tasks/{record.pk}/").json()
        return body if body["status"] == "SUCCESS" else None

    final = wait_for(done, timeout=30)
    assert final["progress"] is None and final["result"]["input_x"] == "slow"
    assert set(client.get(f"/result/{record.pk}").json()) == {
        "task_id",
        "task_status",
        "task_result",
    }
    # The worker wrote one JSON line for the start and one for the finish of this task.
    lines = [
        json.loads(line) for line in solo_worker.log.read_text().splitlines() if "{" == line[:1]
    ]
    mine = {line["event"]: line for line in lines if line.get("task_id") == str(record.pk)}
    assert set(mine) == {"started", "finished"}
    assert mine["started"]["user"] == "alice" and mine["started"]["wait"] >= 0
    assert mine["finished"]["status"] == "SUCCESS"
    assert mine["finished"]["run"] == pytest.approx(2.5, abs=0.5)
