"""Teams: `manage.py team`, the queue following membership and team weights, and a real worker
serving a team of one and a team of four alike."""

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.services.submission import task_submit
from tests.conftest import ROOT, client_for, make_user, subprocess_env, wait_for
from users_app.models import Profile, Team

BOUNDS = [1000, 2000, 3000, 4000, 5000]  # every task at level 0


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_team_commands_create_add_remove_weight_list():
    for name in ("ann", "ben", "cy"):
        make_user(name)
    assert run("team", "create", "red", "--weight", "2").strip() == "team red: weight 2"
    assert run("team", "create", "blue").strip() == "team blue: weight 1"
    assert "added ann, ben" in run("team", "add", "red", "ann", "ben")
    run("team", "add", "blue", "ben")  # at most one team: ben leaves red
    assert Profile.objects.get(user__username="ben").team.name == "blue"
    assert run("team", "weight", "blue", "5").strip() == "team blue: weight 5"
    listed = json.loads(run("team", "list", "--json"))
    assert listed == [
        {"name": "blue", "weight": 5, "members": ["ben"]},
        {"name": "red", "weight": 2, "members": ["ann"]},
    ]
    assert "red  weight 2  1: ann" in run("team", "list")
    assert "ann, cy" not in run("team", "remove", "ann", "cy")
    assert run("team", "remove", "ann").strip().endswith("none was in one")
    assert Profile.objects.get(user__username="ann").team is None


TEAM_BAD_INPUT = [
    (("team", "create", "red"), "a team named 'red' exists already"),
    (("team", "create", "no way"), "the team name 'no way' is not allowed"),
    (("team", "create", "green", "--weight", "0"), "the weight must be an integer from 1"),
    (("team", "add", "nosuch", "ann"), "no team named 'nosuch': `manage.py team list`"),
    (("team", "add", "red", "nobody"), "no user named 'nobody'"),
    (("team", "remove", "nobody"), "no user named 'nobody'"),
    (("team", "weight", "red", "heavy"), "the weight must be an integer from 1"),
    (("team", "weight", "nosuch", "2"), "no team named 'nosuch'"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "says"), TEAM_BAD_INPUT)
def test_team_command_bad_input_is_one_line(args, says):
    make_user("ann")
    Team.objects.create(name="red", weight=1)
    with pytest.raises(CommandError) as failure:
        run(*args)
    assert says in str(failure.value)
    assert "\n" not in str(failure.value)


def test_team_command_exits_non_zero_with_one_line(django_db_setup):
    done = subprocess.run(
        [sys.executable, "manage.py", "team", "weight", "nosuch", "2"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("`manage.py team create nosuch --weight 1` creates it")
    )


def _groups() -> dict:
    key = core().keys.key
    return core().redis.hgetall(key("q", "grp"))


@pytest.mark.django_db
def test_membership_and_team_weight_reach_the_queued_backlog(
    no_worker, settings, django_capture_on_commit_callbacks
):
    """Tasks queued before a user joins a team move into it after the commit; a team's new
    weight respaces its backlog; leaving the team takes them out again."""
    settings.PQH_LEVEL_BOUNDS = BOUNDS
    ann, _ = make_user("ann")
    for _ in range(3):
        task_submit(user=ann, x=1)
    red = Team.objects.create(name="red", weight=1)
    with django_capture_on_commit_callbacks(execute=True):
        run("team", "add", "red", "ann")
    assert _groups() == {str(ann.pk): red.queue_key}
    key = core().keys.key
    waiting = core().redis.zrange(key("q", "tw", 0), 0, -1)
    assert len(waiting) >= 2 and all(w.startswith(f"{red.queue_key}:") for w in waiting)
    tags = [s for _, s in core().redis.zrange(key("q", "lvl", 0), 0, -1, withscores=True)]
    with django_capture_on_commit_callbacks(execute=True):
        run("team", "weight", "red", "4")
    after = [s for _, s in core().redis.zrange(key("q", "lvl", 0), 0, -1, withscores=True)]
    assert after[0] == tags[0] and after[1] - after[0] == pytest.approx(0.25)
    assert core().redis.hget(key("q", "teams"), red.queue_key) == "4"
    with django_capture_on_commit_callbacks(execute=True):
        run("team", "remove", "ann")
    assert _groups() == {}
    assert core().redis.zcard(key("q", "tw", 0)) == 0


def test_a_submission_carries_the_team_without_another_query(no_worker, settings, db):
    """The team is loaded with the weight row: submitting as a team member costs the queries
    submitting as a user in no team does."""
    settings.PQH_LEVEL_BOUNDS = BOUNDS
    _, lone_token = make_user("lone")
    _, member_token = make_user("member")
    red = Team.objects.create(name="red", weight=3)
    Profile.objects.filter(user__username="member").update(team=red)
    counts = []
    for token in (lone_token, member_token):
        client = client_for(token)
        client.post("/task", {"x": 1}, format="json")  # warm the auth cache
        with CaptureQueriesContext(connection) as queries:
            assert client.post("/task", {"x": 1}, format="json").status_code == 202
        counts.append(len(queries))
    assert counts[0] == counts[1]
    member = Profile.objects.get(user__username="member").user
    assert _groups() == {str(member.pk): red.queue_key}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("solo_worker", [{"PQH_MAX_WAIT_SECONDS": "600"}], indirect=True)
def test_a_team_of_one_and_a_team_of_four_of_equal_weight_alternate_on_a_worker(
    solo_worker, settings
):
    """Team B (weight 1: four users) submits 24 tasks, then team A (weight 1: one user) 6, all
    at level 0, through the API; the real worker runs them. Between A's first and last start,
    B starts as many tasks as A (one fewer, give or take the one released ahead), where with no
    teams the four B users would have had four starts for each of A's."""
    settings.PQH_LEVEL_BOUNDS = BOUNDS
    settings.PQH_MAX_WAIT_SECONDS = 600.0
    team_a = Team.objects.create(name="A", weight=1)
    team_b = Team.objects.create(name="B", weight=1)
    users = {name: make_user(name) for name in ("a1", "b1", "b2", "b3", "b4")}
    Profile.objects.filter(user__username="a1").update(team=team_a)
    Profile.objects.filter(user__username__startswith="b").update(team=team_b)
    for _ in range(6):
        for name in ("b1", "b2", "b3", "b4"):
            response = client_for(users[name][1]).post("/task", {"x": 1}, format="json")
            assert response.status_code == 202
    for _ in range(6):
        assert client_for(users["a1"][1]).post("/task", {"x": 1}, format="json").status_code == 202
    wait_for(lambda: TaskRecord.objects.filter(status="SUCCESS").count() == 30, timeout=120)
    order = list(TaskRecord.objects.order_by("started_at").values_list("user__username", flat=True))
    first, last = order.index("a1"), len(order) - 1 - order[::-1].index("a1")
    between = order[first : last + 1]
    assert between.count("a1") == 6
    b_starts = len(between) - 6
    assert 5 <= b_starts <= 6, order
    # Within B, its members alternate too: every B member has 1 or 2 of those starts.
    assert all(1 <= between.count(name) <= 2 for name in ("b1", "b2", "b3", "b4")), order


@pytest.mark.django_db
def test_the_team_admin_lists_weight_and_members_and_edits_members(
    admin_client, no_worker, settings, django_capture_on_commit_callbacks
):
    settings.PQH_LEVEL_BOUNDS = BOUNDS
    ann, _ = make_user("ann")
    ben, _ = make_user("ben")
    task_submit(user=ben, x=1)  # released to the broker at once
    task_submit(user=ben, x=1)  # waits
    red = Team.objects.create(name="red", weight=2)
    url = f"/admin/users_app/team/{red.pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, {"name": "red", "weight": "3", "members": [ann.pk, ben.pk]}
        )
    assert response.status_code == 302
    assert set(Profile.objects.filter(team=red).values_list("user__username", flat=True)) == {
        "ann",
        "ben",
    }
    # The queue knows both (ben's queued task followed him).
    assert _groups() == {str(ann.pk): red.queue_key, str(ben.pk): red.queue_key}
    assert core().redis.zcard(core().keys.key("q", "tw", 0)) == 1
    page = admin_client.get("/admin/users_app/team/").content.decode()
    assert "red" in page and ">2<" in page  # two members
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"name": "red", "weight": "3", "members": [ann.pk]})
    assert Profile.objects.get(user=ben).team is None
    assert _groups() == {str(ann.pk): red.queue_key}
    assert core().redis.zcard(core().keys.key("q", "tw", 0)) == 0


@pytest.mark.django_db
def test_usage_names_the_team_and_its_weight(no_worker):
    _, lone_token = make_user("lone")
    member, member_token = make_user("member")
    red = Team.objects.create(name="red", weight=3)
    run("team", "add", "red", "member")
    lone = client_for(lone_token).get("/api/usage/").json()
    assert lone["team"] is None and lone["team_weight"] is None
    mine = client_for(member_token).get("/api/usage/").json()
    assert mine["team"] == red.name and mine["team_weight"] == 3


@pytest.mark.django_db
def test_queue_stats_and_the_admin_show_the_team_beside_the_weight(no_worker, admin_client):
    member, _ = make_user("member", weight=2)
    lone, _ = make_user("lone")
    run("team", "create", "red", "--weight", "3")
    run("team", "add", "red", "member")
    member = Profile.objects.get(user__username="member").user  # with its team loaded
    mine = task_submit(user=member, x=1)
    task_submit(user=lone, x=1)
    stats = json.loads(run("queue_stats", "--json"))
    rows = {row["user"]: row for row in stats["users"]}
    assert (rows["member"]["team"], rows["member"]["team_weight"]) == ("red", 3)
    assert (rows["lone"]["team"], rows["lone"]["team_weight"]) == (None, None)
    text = run("queue_stats")
    assert "usage 1 task(s) = 0 per weight, weight 2, team red (team weight 3), next" in text
    assert "lone: count 1, usage 1 task(s), weight 1, no team, next" in text
    # The task's page: the team recorded at submission, its weight, the member's weight.
    page = admin_client.get(f"/admin/tasks_app/taskrecord/{mine.pk}/change/").content.decode()
    assert "red (team weight 3), member weight 2" in page
    assert "team red (team weight 3) shares its level among teams" in page
    # The weights list and the users list: the team beside the weight.
    weights = admin_client.get("/admin/users_app/profile/").content.decode()
    assert "red (weight 3)" in weights
    users = admin_client.get("/admin/auth/user/").content.decode()
    assert "red (weight 3)" in users
