"""A worker's log keeps no task data unless asked: no input, no result, by default."""

import pytest

from tasks_app.models import TaskRecord
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SECRET = "do-not-log-me-7f3a"


def run_one(client, worker) -> str:
    start = worker.log.stat().st_size
    task_id = client.post("/task", {"x": {"note": SECRET}}, format="json").json()["task_id"]
    wait_for(lambda: TaskRecord.objects.filter(pk=task_id, status="SUCCESS").exists(), timeout=30)
    wait_for(lambda: "succeeded" in worker.log.read_text()[start:], timeout=10)
    return worker.log.read_text()[start:]


def test_by_default_the_worker_logs_neither_input_nor_result(alice_client, solo_worker):
    log = run_one(alice_client, solo_worker)
    assert SECRET not in log
    assert "succeeded in" in log and "event=finished" in log


@pytest.mark.parametrize("solo_worker", [{"PQH_LOG_TASK_DATA": "1"}], indirect=True)
def test_an_operator_may_ask_for_the_results_in_the_log(alice_client, solo_worker):
    assert SECRET in run_one(alice_client, solo_worker)  # the default work returns its input
