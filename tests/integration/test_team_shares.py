"""A team's share beside its members': the shares sweep reading the team recorded on each task,
the dashboard's teams table, fairness_report's teams, and the pqh_team_* gauges."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from tasks_app.ops.metrics import OTHERS
from tasks_app.selectors import reports
from tasks_app.services.submission import task_submit
from tests.conftest import make_user
from tests.integration.test_metrics import basic
from tests.integration.test_reports import record
from tests.servers import samples, value
from users_app.services import team_add, team_create


def teams_of(text: str, metric: str) -> dict[str, float]:
    return {
        dict(labels)["team"]: v for (name, labels), v in samples(text).items() if name == metric
    }


@pytest.fixture
def three_on_one_slot(db, settings):
    """Alice (no team) against team b (bob and carol, team weight 1), all backlogged at level 0
    from 100 s ago; one slot serves alice, bob, carol 20 s each, then nothing runs."""
    settings.PQH_MAX_WAIT_SECONDS = 600
    now = timezone.now()
    users = {name: make_user(name)[0] for name in ("alice", "bob", "carol")}
    start = now - timedelta(seconds=100)
    for i, name in enumerate(("alice", "bob", "carol")):
        team = "" if name == "alice" else "b"
        weight = None if name == "alice" else 1
        record(users[name], submitted=start, team=team, team_weight=weight)  # still waiting
        began = start + timedelta(seconds=20 * i)
        record(
            users[name],
            submitted=start,
            started=began,
            finished=began + timedelta(seconds=20),
            team=team,
            team_weight=weight,
        )
    return now


def test_the_sweep_divides_among_teams_then_members_in_one_query(
    three_on_one_slot, django_assert_num_queries
):
    now = three_on_one_slot
    with django_assert_num_queries(1):
        shares = reports.user_shares(since=now - timedelta(hours=1), now=now)
    by_name = {s.username: s for s in shares}
    # Each piece of 20 s on one slot: half to alice, a quarter to each of bob and carol.
    assert by_name["alice"].due_seconds == pytest.approx(30.0)
    assert by_name["bob"].due_seconds == pytest.approx(15.0)
    assert (by_name["bob"].team, by_name["bob"].team_weight) == ("b", 1)
    assert (by_name["alice"].team, by_name["alice"].team_weight) == ("", None)
    (b,) = reports.teams_of(shares)
    assert (b.team, b.members) == ("b", ["bob", "carol"])
    assert b.share == pytest.approx(2 / 3) and b.entitled == pytest.approx(0.5)


def test_the_dashboard_shows_a_teams_share_beside_its_members_and_says_what_it_is(
    three_on_one_slot, admin_client
):
    page = admin_client.get("/admin/fairness/").content.decode()
    teams = page[page.index('id="teams"') : page.index('id="waits"')]
    assert "<td>b</td>" in teams and "bob, carol" in teams
    assert '<td class="num">0.667</td>' in teams and '<td class="num">0.500</td>' in teams
    assert "the sum of its members" in teams and 'id="team-definition"' in teams


def test_fairness_report_lists_the_teams(three_on_one_slot):
    out = StringIO()
    call_command("fairness_report", "--json", stdout=out)
    report = json.loads(out.getvalue())
    (b,) = report["teams"]
    assert (b["team"], b["team_weight"], b["members"]) == ("b", 1, ["bob", "carol"])
    assert b["entitled"] == pytest.approx(0.5)
    users = {row["username"]: row for row in report["users"]}
    assert (users["carol"]["team"], users["alice"]["team"]) == ("b", "")
    out = StringIO()
    call_command("fairness_report", stdout=out)
    text = out.getvalue()
    assert "  bob: weight 1, team b (weight 1), 20.0 s" in text
    assert "  alice: weight 1, no team, 20.0 s" in text
    assert "  b: team weight 1, members bob, carol, 40.0 s, share 0.667, entitled 0.500" in text


def test_team_gauges_sit_beside_the_user_gauges_and_are_bounded(three_on_one_slot, settings):
    operator, _ = make_user("operator")
    get_user_model().objects.filter(pk=operator.pk).update(is_staff=True)
    text = basic("operator").get("/metrics").content.decode()
    assert teams_of(text, "pqh_team_share") == {"b": pytest.approx(2 / 3)}
    assert teams_of(text, "pqh_team_entitled_share") == {"b": pytest.approx(0.5)}
    assert value(text, "pqh_user_entitled_share", user="alice") == pytest.approx(0.5)
    settings.PQH_METRICS_TOP_USERS = 0
    text = basic("operator").get("/metrics").content.decode()
    assert teams_of(text, "pqh_team_share") == {OTHERS: pytest.approx(2 / 3)}


@pytest.mark.django_db
def test_the_dashboards_windows_name_the_team_beside_the_weight(admin_client):
    member, _ = make_user("member", weight=2)
    lone, _ = make_user("lone")
    team_create(name="red", weight=3)
    team_add(name="red", usernames=["member"])
    task_submit(user=get_user_model().objects.get(pk=member.pk), x=1)
    task_submit(user=lone, x=1)
    page = admin_client.get("/admin/fairness/").content.decode()
    windows = page[page.index('id="windows"') : page.index('id="teams"')]
    assert 'red <span class="quiet">(weight 3)</span>' in windows
    assert '<span class="quiet">no team</span>' in windows
