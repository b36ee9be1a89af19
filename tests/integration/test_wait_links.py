"""The web server points waits at the wait server: the answers carry wait_url and events_url,
and a read that asks to wait there is sent on (307), never held by one of its threads."""

import uuid

import pytest

pytestmark = pytest.mark.django_db

WAITS = "http://waits.example:9001"


@pytest.fixture(autouse=True)
def wait_server(settings):
    settings.PQH_WAIT_URL = WAITS
    settings.PQH_WAIT_MAX_SECONDS = 25


def test_a_submission_says_where_to_wait_for_it(alice_client):
    seed = alice_client.post("/task", {"x": "a"}, format="json").json()
    task_id = seed["task_id"]
    assert seed["wait_url"] == f"{WAITS}/result/{task_id}?wait=25"
    assert seed["events_url"] == f"{WAITS}/api/tasks/{task_id}/events"
    api = alice_client.post("/api/tasks/", {"x": "b"}, format="json").json()
    assert api["wait_url"] == f"{WAITS}/api/tasks/{api['task_id']}/?wait=25"
    assert api["events_url"] == f"{WAITS}/api/tasks/{api['task_id']}/events"
    detail = alice_client.get(f"/api/tasks/{task_id}/").json()
    assert detail["wait_url"] == f"{WAITS}/api/tasks/{task_id}/?wait=25"
    listed = alice_client.get("/api/tasks/").json()["results"]
    assert {row["events_url"] for row in listed} == {
        f"{WAITS}/api/tasks/{task_id}/events",
        api["events_url"],
    }


@pytest.mark.parametrize("path", ["/result/{id}", "/result/{id}/", "/api/tasks/{id}/"])
@pytest.mark.parametrize(("query", "headers"), [("?wait=5", {}), ("", {"HTTP_PREFER": "wait=5"})])
def test_a_read_that_asks_to_wait_goes_to_the_wait_server(alice_client, path, query, headers):
    task_id = alice_client.post("/task", {"x": "a"}, format="json").json()["task_id"]
    asked = path.format(id=task_id) + query
    response = alice_client.get(asked, **headers)
    assert response.status_code == 307
    assert response["Location"] == f"{WAITS}{asked}"
    body = response.json()
    assert body["wait_url"] == f"{WAITS}{asked}" and "wait server" in body["detail"]


def test_a_wait_of_zero_is_answered_at_once_and_a_bad_one_is_a_400(alice_client):
    task_id = alice_client.post("/task", {"x": "a"}, format="json").json()["task_id"]
    response = alice_client.get(f"/result/{task_id}?wait=0")
    assert response.status_code == 200 and response.json()["task_status"] == "PENDING"
    response = alice_client.get(f"/api/tasks/{task_id}/?wait=26")
    assert response.status_code == 400
    assert response.json() == {"detail": "wait must be a number of seconds from 0 to 25, got '26'"}


def test_the_events_of_a_task_are_the_wait_servers(alice_client, bob_client):
    task_id = alice_client.post("/task", {"x": "a"}, format="json").json()["task_id"]
    response = alice_client.get(f"/api/tasks/{task_id}/events")
    assert response.status_code == 307
    assert response["Location"] == f"{WAITS}/api/tasks/{task_id}/events"
    # Only your own task's: another's, an unknown id or a bad one is a 404, as everywhere.
    assert bob_client.get(f"/api/tasks/{task_id}/events").status_code == 404
    assert alice_client.get(f"/api/tasks/{uuid.uuid4()}/events").status_code == 404
    assert alice_client.get("/api/tasks/nonsense/events").status_code == 404


def test_anonymous_reads_that_ask_to_wait_are_refused_here(client):
    response = client.get(f"/result/{uuid.uuid4()}?wait=5")
    assert response.status_code == 401
