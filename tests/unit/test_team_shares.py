"""Team shares: the two-step division (among teams by team weight, then within a team by member
weight), a team's share as the sum of its members', and no teams giving today's figures."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from fairqueue import shares

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
USERS = {1: "alice", 2: "bob", 3: "carol", 4: "dave", 5: "erin"}


def at(seconds):
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def task(user, *, weight=1, team="", team_weight=1, submitted=0.0, started=None, finished=None):
    return shares.TaskSpan(
        user,
        USERS[user],
        0,
        weight,
        at(submitted),
        at(started),
        at(finished),
        1,
        team,
        team_weight,
    )


def test_two_steps_among_teams_by_team_weight_then_members_by_weight():
    users = {1: (1, 10), 2: (1, 10), 3: (1, 10), 4: (1, 10), 5: (3, 10)}
    teams = {2: ("b", 1), 3: ("b", 1), 4: ("b", 1), 5: ("b", 1)}
    parts = shares.divide_by_team(4, users, teams)
    # Alice alone (weight 1) against team b (weight 1): 2 slots each; within b 1:1:1:3.
    assert parts[1] == pytest.approx(2.0)
    assert [parts[u] for u in (2, 3, 4)] == [pytest.approx(2 / 6)] * 3
    assert parts[5] == pytest.approx(1.0)
    # Team b at weight 3: alice gets a quarter.
    heavier = shares.divide_by_team(4, users, {u: ("b", 3) for u in teams})
    assert heavier[1] == pytest.approx(1.0) and sum(heavier.values()) == pytest.approx(4.0)


def test_a_team_with_few_tasks_is_capped_and_its_rest_goes_on():
    users = {1: (1, 10), 2: (1, 1), 3: (1, 0)}
    teams = {2: ("b", 5), 3: ("b", 5)}
    parts = shares.divide_by_team(4, users, teams)
    assert parts == {1: pytest.approx(3.0), 2: pytest.approx(1.0), 3: pytest.approx(0.0)}


def test_with_no_teams_the_division_is_exactly_todays():
    rng = random.Random(7)
    for _ in range(500):
        users = {u: (rng.randint(1, 6), rng.randint(0, 8)) for u in range(rng.randint(1, 7))}
        slots = rng.randint(1, 12)
        assert shares.divide_by_team(slots, users, {}) == shares.divide_by_weight(slots, users)
        # A team of one at the user's own weight is the user alone, too.
        ones = {u: (f"t{u}", w) for u, (w, _) in users.items()}
        got = shares.divide_by_team(slots, users, ones)
        want = shares.divide_by_weight(slots, users)
        assert got == pytest.approx(want)


def test_one_slot_a_team_of_one_against_a_team_of_four_each_due_half():
    # 100 s on one slot, all backlogged at one level; the worker served 1 : 4 by user (today's
    # queue): alice received 20 s where her team was entitled to 50.
    tasks = [task(1, submitted=0), *(task(u, team="b", submitted=0) for u in (2, 3, 4, 5))]
    t = 0.0
    for _ in range(4):
        for u in (1, 2, 3, 4, 5):
            tasks.append(
                task(u, team="" if u == 1 else "b", submitted=0, started=t, finished=t + 5)
            )
            t += 5
    found = shares.shares_from(tasks, since=T0, now=at(100), max_wait=600)
    by_name = {s.username: s for s in found}
    assert by_name["alice"].entitled == pytest.approx(0.5)
    assert by_name["alice"].share == pytest.approx(0.2)
    assert by_name["bob"].entitled == pytest.approx(0.125)
    assert (by_name["bob"].team, by_name["bob"].team_weight) == ("b", 1)
    assert (by_name["alice"].team, by_name["alice"].team_weight) == ("", None)
    (b,) = shares.team_shares(found)
    assert (b.team, b.team_weight, b.members) == ("b", 1, ["bob", "carol", "dave", "erin"])
    assert b.share == pytest.approx(0.8) and b.entitled == pytest.approx(0.5)
    assert b.service_seconds == pytest.approx(80.0)
    assert b.due_seconds == pytest.approx(sum(by_name[n].due_seconds for n in b.members))


def test_the_team_weight_counts_from_the_latest_members_submission():
    # Team b's weight goes from 1 to 3 at 50 s (carol's submission records it): from then on
    # alice is due a quarter of the slot.
    tasks = [
        task(1, submitted=0, started=0, finished=100),
        task(1, submitted=0),
        task(2, team="b", team_weight=1, submitted=0),
        task(3, team="b", team_weight=3, submitted=50),
    ]
    by_name = {
        s.username: s for s in shares.shares_from(tasks, since=T0, now=at(100), max_wait=600)
    }
    assert by_name["alice"].due_seconds == pytest.approx(50 * 0.5 + 50 * 0.25)
    assert by_name["bob"].due_seconds == pytest.approx(50 * 0.5 + 50 * 0.375)
    assert by_name["carol"].due_seconds == pytest.approx(50 * 0.375)


def test_random_histories_with_teams_of_one_read_as_with_no_teams():
    rng = random.Random(11)
    for _ in range(100):
        plain, ones = [], []
        for _ in range(rng.randint(2, 25)):
            user = rng.randint(1, 5)
            weight = 1 + user % 3
            submitted = rng.uniform(0, 80)
            started = submitted + rng.uniform(0, 30) if rng.random() < 0.7 else None
            finished = started + rng.uniform(1, 20) if started is not None else None
            common = {"weight": weight, "submitted": submitted}
            plain.append(task(user, **common, started=started, finished=finished))
            ones.append(
                task(user, **common, team=f"solo{user}", team_weight=weight, started=started,
                     finished=finished)
            )  # fmt: skip
        want = shares.shares_from(plain, since=T0, now=at(100), max_wait=40)
        got = shares.shares_from(ones, since=T0, now=at(100), max_wait=40)
        assert [s.username for s in got] == [s.username for s in want]
        for g, w in zip(got, want, strict=True):
            assert (g.due_seconds, g.entitled) == (
                pytest.approx(w.due_seconds),
                pytest.approx(w.entitled),
            )
            assert g.service_seconds == w.service_seconds
