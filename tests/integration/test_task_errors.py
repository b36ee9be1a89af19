"""Work that fails, overruns, kills its worker or returns junk ends FAILURE with a short message.

A real worker runs tests.callables.misbehave; the owner reads the outcome through the API and
sees the error's type and a bounded first line, never a traceback.
"""

import pytest
from celery import states
from django.conf import settings
from django_celery_results.models import TaskResult

from tasks_app.models import TaskRecord
from tasks_app.selectors.tasks import ERROR_MESSAGE_CHARS
from tasks_app.services.submission import task_submit
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MISBEHAVING = {
    "PQH_TASK_CALLABLE": "tests.callables.misbehave",
    "PQH_TASK_TIME_LIMIT": "1",  # soft limit 1 s
    "PQH_MAX_ATTEMPTS": "2",
}


@pytest.mark.parametrize("solo_worker", [MISBEHAVING], indirect=True)
def test_every_way_work_can_fail_reads_clearly_through_the_api(solo_worker, alice, alice_client):
    user, _ = alice
    tasks = {x: task_submit(user=user, x=x) for x in ("fine", "overrun", "die", "unstorable")}
    tasks |= {x: task_submit(user=user, x=x) for x in ("long", "leaky")}

    def ended():
        pks = [t.pk for t in tasks.values()]
        return TaskRecord.objects.filter(pk__in=pks, status__in=states.READY_STATES).count() == 6

    wait_for(ended, timeout=90)

    def seen(x: str) -> dict:
        body = alice_client.get(f"/result/{tasks[x].pk}").json()
        detail = alice_client.get(f"/api/tasks/{tasks[x].pk}/").json()
        assert detail["result"] == body["task_result"] and detail["status"] == body["task_status"]
        assert "Traceback" not in str(detail) and "secret.py" not in str(detail)
        return body

    assert seen("fine") == {
        "task_id": str(tasks["fine"].pk),
        "task_status": "SUCCESS",
        "task_result": {"echo": "fine"},
    }
    assert seen("overrun")["task_result"] == {
        "error": "TimeLimitExceeded",
        "message": "the task ran longer than its time limit of 1 s",
    }
    assert seen("die")["task_result"] == {
        "error": "WorkerLostError",
        "message": "the task was started 2 times and never finished (its worker was lost); "
        "it is not run again",
    }
    assert TaskRecord.objects.get(pk=tasks["die"].pk).attempts == 3  # the third did not run it
    unstorable = seen("unstorable")["task_result"]
    assert unstorable["error"] == "TypeError"
    assert unstorable["message"].startswith("the task's result cannot be stored as JSON")
    long = seen("long")["task_result"]
    assert long["error"] == "ValueError" and len(long["message"]) == ERROR_MESSAGE_CHARS
    assert long["message"].startswith("a very long message") and long["message"].endswith("…")
    assert seen("leaky")["task_result"] == {
        "error": "RuntimeError",
        "message": "could not reach 10.1.2.3…",
    }
    # Each has exactly one stored result, agreeing with its history row.
    for record in tasks.values():
        record.refresh_from_db()
        stored = TaskResult.objects.filter(task_id=str(record.pk))
        assert [r.status for r in stored] == [record.status]
    # Operators still find the traceback in the stored result.
    assert "RuntimeError" in TaskResult.objects.get(task_id=str(tasks["leaky"].pk)).traceback
    assert settings.PQH_TASK_CALLABLE == "tasks_app.worker.work.limited_f"  # the worker's changed
