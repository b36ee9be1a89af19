"""The estimated start of a queued task: the pure estimate, and checked against what happened."""

from datetime import datetime

import pytest

from tasks_app.models import TaskRecord
from tasks_app.services.submission import task_submit
from tests.conftest import Worker, client_for, make_user, wait_for

NOW = 1000.0


@pytest.mark.django_db
def test_no_estimate_before_any_run_was_measured(alice_client):
    alice_client.post("/api/tasks/", {"x": 1}, format="json")
    queued = alice_client.post("/api/tasks/", {"x": 2}, format="json").json()
    assert queued["status"] == "PENDING" and queued["position"] == 1
    assert queued["estimated_start_at"] is None


RUN = 0.6


SLOTS = 2


@pytest.fixture
def two_slot_worker(worker_env, celery_worker):
    """A worker with two slots and tasks of RUN seconds, alone on the queues while it runs."""
    celery_worker.stop()
    worker = Worker(concurrency=SLOTS, env={**worker_env, "PQH_TASK_SECONDS": str(RUN)})
    worker.start()
    yield worker
    worker.stop()
    celery_worker.start()


def finished(records) -> bool:
    ids = [r.pk for r in records]
    return not TaskRecord.objects.filter(pk__in=ids).exclude(status="SUCCESS").exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_estimated_starts_match_what_happened(two_slot_worker):
    # Some history first: the estimate needs recent run times.
    warm, _ = make_user("warm")
    history = [task_submit(user=warm, x=i) for i in range(SLOTS)]
    wait_for(lambda: finished(history), timeout=30)

    alice, token = make_user("alice")
    client = client_for(token)
    backlog = [task_submit(user=alice, x=i) for i in range(8)]
    wait_for(lambda: TaskRecord.objects.filter(status="STARTED").count() == SLOTS, interval=0.01)
    estimates = {}
    for record in backlog:
        body = client.get(f"/api/tasks/{record.pk}/").json()
        if body["status"] == "PENDING":
            estimates[record.pk] = (body["position"], body["estimated_start_at"])
    assert len(estimates) >= 5
    asked_at = datetime.now().astimezone()
    wait_for(lambda: finished(backlog), timeout=60)

    errors = []
    for pk, (position, estimate) in estimates.items():
        started = TaskRecord.objects.get(pk=pk).started_at
        predicted = datetime.fromisoformat(estimate)
        wait = (predicted - asked_at).total_seconds()
        error = (started - predicted).total_seconds()
        errors.append((position, round(wait, 2), round(error, 3)))
        # Within 0.3 s plus 10% of the predicted wait: each hand-over between two tasks takes a
        # few milliseconds that the mean run time does not include.
        assert abs(error) <= 0.3 + 0.1 * max(wait, 0), errors
    print("estimate errors (position, predicted wait, error):", errors)
    positions = sorted(position for position, _, _ in errors)
    assert positions == list(range(len(positions))), errors


@pytest.mark.django_db
def test_the_answer_to_a_submission_costs_no_estimate_queries(
    alice_client, django_assert_num_queries
):
    alice_client.post("/api/tasks/", {"x": "warm-up"}, format="json")
    # The task row only (the token's user is cached, the position comes back from the enqueue
    # script): the estimate's two reads wait for a poll of the task.
    with django_assert_num_queries(1):
        body = alice_client.post("/api/tasks/", {"x": 1}, format="json").json()
    assert body["estimated_start_at"] is None and body["position"] == 1
