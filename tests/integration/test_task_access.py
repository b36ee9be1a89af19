"""Reading and cancelling tasks: a user sees and touches only their own."""

import pytest

from pqh_site.core import core
from tasks_app.models import TaskRecord

pytestmark = pytest.mark.django_db


def submit(client, x=1):
    return client.post("/api/tasks/", {"x": x}, format="json").json()


def test_result_route_answers_with_and_without_trailing_slash(alice_client):
    task = submit(alice_client)
    for path in (f"/result/{task['task_id']}", f"/result/{task['task_id']}/"):
        body = alice_client.get(path).json()
        assert body == {"task_id": task["task_id"], "task_status": "PENDING", "task_result": None}


def test_another_users_task_does_not_exist_for_you(alice_client, bob_client):
    task = submit(alice_client)
    for path in (f"/result/{task['task_id']}", f"/api/tasks/{task['task_id']}/"):
        response = bob_client.get(path)
        assert response.status_code == 404
        assert "detail" in response.json()
    assert bob_client.delete(f"/api/tasks/{task['task_id']}/").status_code == 404
    assert TaskRecord.objects.get(pk=task["task_id"]).status == "PENDING"


@pytest.mark.parametrize("bad", ["nope", "12345", "00000000-0000-0000-0000-000000000000"])
def test_unknown_ids_are_404(alice_client, bad):
    assert alice_client.get(f"/result/{bad}").status_code == 404
    assert alice_client.get(f"/api/tasks/{bad}/").status_code == 404


def test_list_shows_only_your_tasks_newest_first_paginated(alice_client, bob_client):
    mine = [submit(alice_client, i)["task_id"] for i in range(3)]
    submit(bob_client)
    body = alice_client.get("/api/tasks/").json()
    assert body["count"] == 3
    assert [t["task_id"] for t in body["results"]] == mine[::-1]
    assert {"next", "previous", "results"} <= set(body)


def test_list_pages(alice_client):
    for i in range(25):
        submit(alice_client, i)
    first = alice_client.get("/api/tasks/").json()
    assert first["count"] == 25 and len(first["results"]) == 20 and first["next"]
    second = alice_client.get(first["next"]).json()
    assert len(second["results"]) == 5


def test_detail_shows_level_wait_and_position(alice_client, bob_client):
    for i in range(3):
        submit(alice_client, i)
    newcomer = submit(bob_client)
    detail = bob_client.get(f"/api/tasks/{newcomer['task_id']}/").json()
    assert detail["level"] == 0
    assert detail["wait_seconds"] >= 0
    # Alice's first task (level 0, older) is ahead; her level-1 tasks are behind.
    assert detail["position"] == 1


def test_cancel_a_waiting_task(alice_client):
    submit(alice_client)  # released to the broker at once
    waiting = submit(alice_client)
    response = alice_client.delete(f"/api/tasks/{waiting['task_id']}/")
    assert response.status_code == 200
    assert response.json()["status"] == "REVOKED"
    assert core().queue.waiting_count() == 0
    assert alice_client.get(f"/result/{waiting['task_id']}").json()["task_status"] == "REVOKED"
    again = alice_client.delete(f"/api/tasks/{waiting['task_id']}/")
    assert again.status_code == 409
    assert "already" in again.json()["detail"]


def test_a_started_task_cannot_be_cancelled(alice_client):
    task = submit(alice_client)
    TaskRecord.objects.filter(pk=task["task_id"]).update(status="STARTED")
    response = alice_client.delete(f"/api/tasks/{task['task_id']}/")
    assert response.status_code == 409


def test_usage_reports_count_weight_and_next_level(alice_client):
    assert alice_client.get("/api/usage/").json()["next_level"] == 0
    for i in range(6):
        submit(alice_client, i)
    usage = alice_client.get("/api/usage/").json()
    assert usage.pop("level0_at").endswith(
        "Z"
    )  # tests/integration/test_why_waiting.py checks its value
    # A worker may have run some already; test_why_waiting.py counts them with none running.
    assert 0 <= usage.pop("active") <= 6
    assert usage == {
        "count": 6,
        "usage": 6.0,
        "unit": "tasks",
        "weight": 1,
        "next_level": 2,
        "bounds": [1.0, 6.0, 16.0, 26.0, 36.0],
        "window_seconds": 6000,
        "cap": 100,
        "team": None,
        "team_weight": None,
    }


def test_browsable_api_renders_for_a_logged_in_user(alice, client):
    client.login(username="alice", password="pw-alice")
    page = client.get("/api/tasks/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"Task" in page.content and b'name="x"' in page.content


def test_unknown_routes_answer_json_404(alice_client):
    response = alice_client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
