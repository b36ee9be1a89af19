"""Why am I waiting: a task's priority in the API, /api/usage/'s way back to level 0, the admin.

Under both charges: PQH_CHARGE=tasks (the count) and time (seconds of service; the tests'
PQH_TASK_SECONDS of 0.2 s is the estimate of a user with no history, so the second bounds are
0.2, 1.2, 3.2, 5.2 and 7.2 s).
"""

from datetime import datetime, timedelta

import pytest
from celery import states
from django.contrib.auth import get_user_model
from django.utils import timezone

from fairqueue.testing import count_redis_round_trips
from tasks_app.models import TaskRecord
from tests.conftest import client_for, make_user
from users_app.services import team_add, team_create, team_remove, team_set_weight

T = 6000  # the tests' window (PQH_WINDOW_SECONDS)


def parse(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@pytest.fixture(params=["tasks", "time"])
def charge(request, settings):
    settings.PQH_CHARGE = request.param
    return request.param


def submit(client, n: int) -> list[dict]:
    bodies = []
    for i in range(n):
        response = client.post("/api/tasks/", {"x": i}, format="json")
        assert response.status_code == 202, response.content
        bodies.append(response.json())
    return bodies


@pytest.mark.django_db
def test_a_queued_tasks_detail_says_why_it_waits(charge, alice_client, django_assert_num_queries):
    *_, third = submit(alice_client, 3)
    with django_assert_num_queries(2), count_redis_round_trips() as calls:
        body = alice_client.get(f"/api/tasks/{third['task_id']}/").json()
    assert calls == ["GET", "EVALSHA"]  # the token's version, then the queue's answer
    priority = body["priority"]
    assert body["status"] == "PENDING" and isinstance(body["position"], int)
    assert priority["position"] == body["position"]
    assert priority["estimated_start_at"] == body["estimated_start_at"]
    assert (priority["level"], priority["charge"], priority["weight"]) == (1, charge, 1)
    assert (priority["team"], priority["team_weight"], priority["member_weight"]) == (None, None, 1)
    assert priority["aged"] is False and priority["run_seconds"] is None
    if charge == "tasks":
        assert priority["usage_before"] == 2 and priority["unit"] == "tasks"
        assert priority["usage_per_weight"] == 2 and priority["cost"] == 1.0
        assert priority["bounds"] == [1, 6, 16, 26, 36]
        assert priority["reason"] == (
            "level 1: 2 tasks in the last 6000 s at weight 1 reach the bound 1 "
            "(level 0 needs fewer than 1); no team: shares its level at weight 1"
        )
    else:
        # Two tasks before it, each charged the default estimate of 0.2 s.
        assert priority["usage_before"] == 0.4 and priority["unit"] == "seconds"
        assert priority["cost"] == 0.2
        # 6 x 0.2 is 1.2000000000000002 in floats: shown to the millisecond.
        assert priority["bounds"] == [0.2, 1.2, 3.2, 5.2, 7.2]
        assert priority["reason"] == (
            "level 1: 0.4 s of service charged in the last 6000 s at weight 1 reaches the bound "
            "0.2 s (level 0 needs less than 0.2 s per weight); no team: shares its level at weight 1"
        )


@pytest.mark.django_db
def test_the_reason_counts_one_task_in_the_singular(charge, alice_client):
    first, second = submit(alice_client, 2)
    said = {
        body["task_id"]: alice_client.get(f"/api/tasks/{body['task_id']}/").json()["priority"]
        for body in (first, second)
    }
    if charge == "tasks":
        assert said[first["task_id"]]["reason"] == (
            "level 0: 0 tasks in the last 6000 s at weight 1 stay below the bound 1 of level 1"
            "; no team: shares its level at weight 1"
        )
        assert said[second["task_id"]]["reason"] == (
            "level 1: 1 task in the last 6000 s at weight 1 reaches the bound 1 "
            "(level 0 needs fewer than 1); no team: shares its level at weight 1"
        )
    else:
        assert said[first["task_id"]]["reason"] == (
            "level 0: 0.0 s of service charged in the last 6000 s at weight 1 stays below the "
            "bound 0.2 s of level 1; no team: shares its level at weight 1"
        )
        assert said[second["task_id"]]["reason"] == (
            "level 1: 0.2 s of service charged in the last 6000 s at weight 1 reaches the bound "
            "0.2 s (level 0 needs less than 0.2 s per weight); no team: shares its level at weight 1"
        )


@pytest.mark.django_db
def test_the_answer_to_a_submission_carries_the_priority_without_more_round_trips(
    charge, alice_client
):
    submit(alice_client, 2)  # the first is released at once; the buffer is then full
    with count_redis_round_trips() as calls:
        body = submit(alice_client, 1)[0]
    assert calls == ["GET", "EVALSHA", "EVALSHA"]
    assert body["priority"]["position"] == body["position"] is not None
    assert body["priority"]["aged"] is False and body["priority"]["level"] == 1


@pytest.mark.django_db
def test_the_weight_divides_the_usage(charge):
    _, token = make_user("dora", weight=2)
    client = client_for(token)
    *_, fourth = submit(client, 4)
    priority = client.get(f"/api/tasks/{fourth['task_id']}/").json()["priority"]
    assert priority["weight"] == 2
    if charge == "tasks":
        # 3 // 2 = 1 reaches the bound 1.
        assert (priority["usage_before"], priority["usage_per_weight"], priority["level"]) == (
            3,
            1,
            1,
        )
        assert "3 tasks in the last 6000 s at weight 2 = 1 per weight" in priority["reason"]
    else:
        assert priority["usage_per_weight"] == pytest.approx(0.3) and priority["level"] == 1
        assert "0.6 s of service charged" in priority["reason"]
        assert "at weight 2 = 0.3 s per weight" in priority["reason"]


@pytest.mark.django_db
def test_a_team_members_task_names_its_team_the_team_weight_and_its_member_weight(
    charge, django_assert_num_queries
):
    user, token = make_user("tess", weight=2)
    team_create(name="ml", weight=3)
    team_add(name="ml", usernames=["tess"])
    client = client_for(token)
    first = submit(client, 1)[0]
    with django_assert_num_queries(2), count_redis_round_trips() as calls:
        # The same two queries as with no team: the team was recorded with the task.
        body = client.get(f"/api/tasks/{first['task_id']}/").json()
    assert calls == ["GET", "EVALSHA"]
    priority = body["priority"]
    assert (priority["team"], priority["team_weight"], priority["member_weight"]) == ("ml", 3, 2)
    assert priority["reason"].endswith(
        "; team ml (team weight 3) shares its level among teams, then member weight 2 within "
        "the team"
    )
    record = TaskRecord.objects.get(pk=first["task_id"])
    assert (record.team, record.team_weight) == ("ml", 3)
    # The history keeps the team of the submission: a later change shows on later tasks only.
    team_set_weight(name="ml", weight=5)
    team_remove(usernames=["tess"])
    client = client_for(token)
    again = client.get(f"/api/tasks/{first['task_id']}/").json()["priority"]
    assert (again["team"], again["team_weight"]) == ("ml", 3)
    later = client.get(f"/api/tasks/{submit(client, 1)[0]['task_id']}/").json()["priority"]
    assert (later["team"], later["team_weight"], later["member_weight"]) == (None, None, 2)
    assert later["reason"].endswith("; no team: shares its level at weight 2")


@pytest.mark.django_db
def test_aging_shows_while_queued(charge, alice_client, settings):
    *_, last = submit(alice_client, 3)
    settings.PQH_MAX_WAIT_SECONDS = 0.0  # every waiting task has now waited long enough
    body = alice_client.get(f"/api/tasks/{last['task_id']}/").json()
    assert body["status"] == "PENDING" and body["priority"]["aged"] is True
    assert body["priority"]["reason"].endswith(
        "waiting longer than PQH_MAX_WAIT_SECONDS (0 s) lifted it ahead of every level"
    )


@pytest.mark.django_db
def test_an_ended_task_shows_its_run_seconds_and_the_aged_flag_of_the_history(charge, alice_client):
    *_, last = submit(alice_client, 2)
    TaskRecord.objects.filter(pk=last["task_id"]).update(
        status=states.SUCCESS,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        run_seconds=1.25,
        aged=True,
    )
    body = alice_client.get(f"/api/tasks/{last['task_id']}/").json()
    priority = body["priority"]
    assert priority["run_seconds"] == 1.25 and priority["aged"] is True
    assert priority["position"] is None and priority["estimated_start_at"] is None
    assert "lifted it ahead of every level" in priority["reason"]


@pytest.mark.django_db
def test_durations_are_shown_to_the_millisecond_and_stored_exactly(charge, alice_client):
    *_, last = submit(alice_client, 2)
    now = timezone.now()
    TaskRecord.objects.filter(pk=last["task_id"]).update(
        status=states.SUCCESS,
        started_at=now - timedelta(seconds=60.0008564),
        finished_at=now,
        run_seconds=60.00085645299998,
        cost=0.20000000000000004,
        usage_before=0.6000000000000001,
    )
    TaskRecord.objects.filter(pk=last["task_id"]).update(
        submitted_at=now - timedelta(seconds=60.0008564 + 1.2345678)
    )
    body = alice_client.get(f"/api/tasks/{last['task_id']}/").json()
    priority = body["priority"]
    assert priority["run_seconds"] == 60.001
    assert body["wait_seconds"] == 1.235
    if charge == "time":
        assert priority["cost"] == 0.2 and priority["usage_before"] == 0.6
        assert priority["usage_per_weight"] == 0.6
    listed = alice_client.get("/api/tasks/").json()["results"]
    assert [row["wait_seconds"] for row in listed if row["task_id"] == last["task_id"]] == [1.235]
    for row in listed:
        assert row["wait_seconds"] is None or row["wait_seconds"] == round(row["wait_seconds"], 3)
    stored = TaskRecord.objects.get(pk=last["task_id"])
    assert (stored.run_seconds, stored.cost) == (60.00085645299998, 0.20000000000000004)


@pytest.mark.django_db
def test_the_list_keeps_its_short_shape(charge, alice_client):
    submit(alice_client, 1)
    row = alice_client.get("/api/tasks/").json()["results"][0]
    assert "priority" not in row and "position" not in row


@pytest.mark.django_db
def test_usage_says_when_the_user_is_back_at_level_0(charge, alice_client):
    empty = alice_client.get("/api/usage/").json()
    assert (empty["count"], empty["usage"], empty["next_level"], empty["level0_at"]) == (
        0,
        0.0,
        0,
        None,
    )
    assert (empty["cap"], empty["active"]) == (100, 0)
    submit(alice_client, 3)
    with count_redis_round_trips() as calls:
        body = alice_client.get("/api/usage/").json()
    assert calls == ["GET", "EVALSHA"]  # the token's version, then the window and active set
    newest = TaskRecord.objects.order_by("-submitted_at").first().submitted_at.timestamp()
    assert body["count"] == 3 and body["weight"] == 1 and body["window_seconds"] == T
    # PQH_USER_MAX_ACTIVE; a worker may have run the first (counted exactly below, with none).
    assert body["cap"] == 100 and 1 <= body["active"] <= 3
    if charge == "tasks":
        assert (body["usage"], body["unit"], body["next_level"]) == (3.0, "tasks", 1)
        assert body["bounds"] == [1, 6, 16, 26, 36]
    else:
        # 0.2 + 0.2 + 0.2 is 0.6000000000000001 in floats: shown to the millisecond.
        assert body["usage"] == 0.6 and body["unit"] == "seconds"
        assert body["next_level"] == 1
        assert body["bounds"] == [0.2, 1.2, 3.2, 5.2, 7.2]
    # Level 0 needs less than the first bound, 1 task or 0.2 s: every submission must leave.
    assert parse(body["level0_at"]) == pytest.approx(newest + T, abs=1e-3)


@pytest.mark.django_db
def test_usage_of_a_heavier_user_falls_back_sooner(charge):
    _, token = make_user("dora", weight=2)
    client = client_for(token)
    submit(client, 3)
    body = client.get("/api/usage/").json()
    times = sorted(r.submitted_at.timestamp() for r in TaskRecord.objects.all())
    assert body["weight"] == 2 and body["next_level"] == 1
    # Under tasks 1 // 2 = 0 < 1 once two have left; under time 0.2 / 2 = 0.1 < 0.2 likewise.
    assert parse(body["level0_at"]) == pytest.approx(times[1] + T, abs=1e-3)


@pytest.mark.django_db
def test_usage_shows_the_users_own_cap_and_what_it_counts(alice, alice_client, settings, no_worker):
    from tasks_app.services.actions import task_cancel
    from users_app.models import Profile

    Profile.objects.filter(user=alice[0]).update(max_active=2)
    first, second = submit(alice_client, 2)
    body = alice_client.get("/api/usage/").json()
    assert (body["cap"], body["active"]) == (2, 2)
    refused = alice_client.post("/api/tasks/", {"x": 3}, format="json")
    assert refused.status_code == 429
    assert (refused.json()["limit"], refused.json()["active"]) == (body["cap"], body["active"])
    task_cancel(user=alice[0], task_id=first["task_id"])  # a cancelled task stops counting
    body = alice_client.get("/api/usage/").json()
    assert (body["cap"], body["active"], body["count"]) == (2, 1, 2)
    profile = Profile.objects.get(user=alice[0])
    profile.max_active = None
    profile.save()  # as the admin saves it: the web process's remembered user is renewed
    settings.PQH_USER_MAX_ACTIVE = 7
    assert alice_client.get("/api/usage/").json()["cap"] == 7  # the default again


@pytest.mark.django_db
def test_usage_with_fairness_off_is_always_level_0(charge, alice_client, settings):
    settings.PQH_FAIRNESS = False
    submit(alice_client, 3)
    body = alice_client.get("/api/usage/").json()
    assert body["count"] == 3 and body["next_level"] == 0 and body["level0_at"] is None


@pytest.fixture
def staff_client(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.mark.django_db
def test_the_admin_history_and_detail_say_why(charge, staff_client, alice_client):
    *_, last = submit(alice_client, 3)
    listing = staff_client.get("/admin/tasks_app/taskrecord/").content.decode().lower()
    for heading in ("level", "aged", "wait", "position", "run time"):
        assert f">{heading}</a>" in listing or f">{heading}</span>" in listing, heading
    # The usage that set the level and the cost are on the task's page, with the reason.
    detail = staff_client.get(f"/admin/tasks_app/taskrecord/{last['task_id']}/change/")
    assert detail.status_code == 200
    page = detail.content.decode()
    for heading in ("usage before", "cost", "why this level"):
        assert heading in page.lower()
    if charge == "tasks":
        assert "2 tasks" in page and "1 task" in page
    else:
        assert "0.4 s" in page and "0.2 s (estimate)" in page
    word = "2 tasks in the last 6000 s" if charge == "tasks" else "0.4 s of service charged"
    assert f"level 1: {word}" in page


@pytest.mark.django_db
def test_the_dashboard_shows_usage_and_the_way_back_to_level_0(charge, staff_client, alice_client):
    submit(alice_client, 3)
    page = staff_client.get("/admin/fairness/").content.decode()
    windows = page[page.index('id="windows"') : page.index('id="waits"')]
    assert "back at level 0" in windows and "UTC" in windows
    assert ("0.6 s" in windows) == (charge == "time")
