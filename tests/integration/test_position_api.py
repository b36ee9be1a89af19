"""Queue positions through the API: carried by the 202, one Redis round trip for a read or a page.

Not under the fair-queue tests' own prefix: these publish to Celery, whose broker settings are
fixed by the first publish in the process.
"""

import pytest

from fairqueue.testing import count_redis_round_trips
from tasks_app.models import TaskRecord
from tasks_app.selectors.places import task_places

pytestmark = pytest.mark.django_db


def test_an_api_submission_that_waits_costs_one_query_and_three_round_trips(
    alice_client, django_assert_num_queries
):
    for warm_up in range(2):  # the first is released at once; the buffer is then full
        alice_client.post("/api/tasks/", {"x": warm_up}, format="json")
    # The cached token's version (GET), admission and enqueue; the INSERT.
    with count_redis_round_trips() as calls, django_assert_num_queries(1):
        response = alice_client.post("/api/tasks/", {"x": 1}, format="json")
    assert response.status_code == 202
    assert isinstance(response.json()["position"], int)  # from the enqueue script's answer
    assert calls == ["GET", "EVALSHA", "EVALSHA"]


def test_a_detail_read_and_a_page_of_positions_cost_one_round_trip_for_positions(
    alice, alice_client
):
    ids = [
        alice_client.post("/api/tasks/", {"x": i}, format="json").json()["task_id"]
        for i in range(5)
    ]
    with count_redis_round_trips() as calls:
        body = alice_client.get(f"/api/tasks/{ids[-1]}/").json()
    # The cached token's version (GET), then the positions script.
    assert calls == ["GET", "EVALSHA"] and isinstance(body["position"], int)
    records = list(TaskRecord.objects.filter(pk__in=ids))
    with count_redis_round_trips() as calls:
        page = {pk: p and p.position for pk, p in task_places(records).items()}
    assert calls == ["EVALSHA"]
    assert set(page) == {r.pk for r in records}
    waiting = sorted(p for p in page.values() if p is not None)
    assert waiting == sorted(set(waiting))  # distinct places


def test_the_seed_submission_does_not_ask_the_fair_queue_for_a_position(alice_client):
    """POST /task answers the original's keys, which have no position: the enqueue script is
    not asked to count one (POST /api/tasks/, which shows it, still is)."""
    from unittest import mock

    from fairqueue.queue import FairQueue

    with mock.patch.object(FairQueue, "add", autospec=True, side_effect=FairQueue.add) as add:
        seed = alice_client.post("/task", {"x": 1}, format="json")
        api = alice_client.post("/api/tasks/", {"x": 2}, format="json")
    assert seed.status_code == api.status_code == 202
    assert "position" not in seed.json() and isinstance(api.json()["position"], int)
    assert [call.kwargs["position"] for call in add.call_args_list] == [False, True]
    assert TaskRecord.objects.filter(pk=seed.json()["task_id"]).exists()
