"""The fairness figures' arithmetic: the sweep behind shares and entitlements, Jain's index,
percentiles; no database. Times are seconds after T0; the period is [T0, T0 + `until`)."""

from datetime import UTC, datetime, timedelta

import pytest

from fairqueue import shares
from fairqueue.stats import jain_index
from tasks_app.ops import metrics
from tasks_app.selectors.reports import PercentileCont

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
USERS = {1: "alice", 2: "bob", 3: "carol", 4: "dave"}


def at(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def task(user, *, level=0, weight=1, submitted=0.0, started=None, finished=None, count=1):
    return shares.TaskSpan(
        user, USERS[user], level, weight, at(submitted), at(started), at(finished), count
    )


def sweep(tasks, *, until: float, max_wait: float = 600.0) -> dict[str, shares.UserShare]:
    found = shares.shares_from(tasks, since=T0, now=at(until), max_wait=max_wait)
    return {s.username: s for s in found}


def test_time_alone_is_the_users_own_and_the_contended_stretch_is_shared_by_weight():
    # The newcomer's hour in small: alice (weight 1) runs alone for 40 s; bob (weight 3) arrives
    # and, from 40 s to the end at 80 s, both have tasks waiting at level 0 on one slot: bob
    # runs 30 s, alice 10 s, exactly 1 : 3.
    tasks = [
        *(task(1, submitted=0, started=s, finished=s + 10) for s in (0, 10, 20, 30, 70)),
        task(1, submitted=0),  # still waiting at the end
        *(task(2, weight=3, submitted=40, started=s, finished=s + 10) for s in (40, 50, 60)),
        task(2, weight=3, submitted=40),  # still waiting at the end
    ]
    by_name = sweep(tasks, until=80)
    alice, bob = by_name["alice"], by_name["bob"]
    assert (alice.service_seconds, alice.contended_seconds) == (50.0, 10.0)
    assert alice.due_seconds == pytest.approx(10.0)
    assert (bob.service_seconds, bob.contended_seconds) == (30.0, 30.0)
    assert bob.due_seconds == pytest.approx(30.0)
    # Received equals entitled: 50 and 30 of 80 s. Counting the weights over the whole period
    # would have said alice was entitled to 1/4 and received 5/8.
    assert (alice.share, bob.share) == (pytest.approx(50 / 80), pytest.approx(30 / 80))
    assert (alice.entitled, bob.entitled) == (pytest.approx(50 / 80), pytest.approx(30 / 80))
    assert shares.share_fairness(list(by_name.values())) == pytest.approx(1.0)
    assert [s.username for s in shares.shares_from(tasks, since=T0, now=at(80), max_wait=600)] == [
        "alice",
        "bob",
    ]


def test_a_user_served_below_its_weight_while_contending_reads_so():
    # Both backlogged at one level for 100 s, first come first served: 50 s each at 1 : 3.
    tasks = [
        task(1, submitted=0, started=0, finished=50),
        task(1, submitted=0),
        task(2, weight=3, submitted=0, started=50, finished=100),
        task(2, weight=3, submitted=0),
    ]
    by_name = sweep(tasks, until=100)
    assert by_name["alice"].due_seconds == pytest.approx(25.0)
    assert by_name["bob"].due_seconds == pytest.approx(75.0)
    assert by_name["alice"].entitled == pytest.approx(0.25)
    assert by_name["bob"].share == pytest.approx(0.5)
    # received ÷ due = 2 and 2/3: the index the fairness benchmark reports for FIFO at 1:3.
    assert shares.share_fairness(list(by_name.values())) == pytest.approx(0.8)


def test_two_levels_at_once_each_divided_among_its_own_contenders():
    # Two slots. Level 0: alice and bob (weights 1) alternate on one slot for 40 s. Level 1:
    # carol alone for 20 s on the other, then alice's level-1 task contends with her there.
    # dave (weight 5) waits at level 2 all along: level 2 receives nothing, so he is due nothing.
    tasks = [
        task(1, submitted=0, started=0, finished=10),
        task(1, submitted=0, started=20, finished=30),
        task(1, submitted=0),
        task(2, submitted=0, started=10, finished=20),
        task(2, submitted=0, started=30, finished=40),
        task(2, submitted=0),
        task(3, level=1, submitted=0, started=0, finished=20),
        task(3, level=1, submitted=0, started=20, finished=30),
        task(3, level=1, submitted=0),
        task(1, level=1, submitted=20, started=30, finished=40),
        task(4, level=2, weight=5, submitted=0),
    ]
    by_name = sweep(tasks, until=40)
    figures = {
        name: (s.service_seconds, s.contended_seconds, round(s.due_seconds, 9))
        for name, s in by_name.items()
    }
    assert figures == {
        "alice": (30.0, 30.0, 30.0),  # 20 s at level 0, 10 s at level 1, each her due
        "bob": (20.0, 20.0, 20.0),
        "carol": (30.0, 10.0, 10.0),  # 20 s alone, then 10 s of 20 shared with alice
        "dave": (0.0, 0.0, 0.0),
    }
    assert by_name["dave"].share == by_name["dave"].entitled == 0.0
    assert by_name["carol"].entitled == pytest.approx(30 / 80)
    assert sum(s.entitled for s in by_name.values()) == pytest.approx(1.0)
    assert shares.share_fairness(list(by_name.values())) == pytest.approx(1.0)


def test_a_weight_change_counts_from_the_submission_that_recorded_it():
    # alice and bob backlogged at one level on one slot. Until 40 s both weigh 1 (20 s each);
    # at 40 s alice submits with weight 3, and from then on she is due 3/4 of the slot.
    tasks = [
        task(1, submitted=0, started=0, finished=20),
        task(1, submitted=0, started=40, finished=70),  # served at the new weight
        task(1, weight=3, submitted=40),
        task(2, submitted=0, started=20, finished=40),
        task(2, submitted=0, started=70, finished=80),
        task(2, submitted=0),
    ]
    by_name = sweep(tasks, until=80)
    assert by_name["alice"].due_seconds == pytest.approx(20 + 30)
    assert by_name["bob"].due_seconds == pytest.approx(20 + 10)
    assert by_name["alice"].weight == 3
    assert shares.share_fairness(list(by_name.values())) == pytest.approx(1.0)
    # The weight that holds is the latest submission's, whatever order the rows come in.
    assert sweep(list(reversed(tasks)), until=80) == by_name


def test_nobody_served_is_shares_of_zero_and_no_index():
    tasks = [task(1, submitted=0), task(2, weight=3, submitted=5)]
    by_name = sweep(tasks, until=60)
    assert {(s.service_seconds, s.share, s.entitled, s.due_seconds) for s in by_name.values()} == {
        (0.0, 0.0, 0.0, 0.0)
    }
    assert shares.share_fairness(list(by_name.values())) is None
    assert shares.shares_from([], since=T0, now=at(60), max_wait=600) == []


def test_a_user_cannot_be_due_more_slots_than_it_has_tasks():
    # Two slots, one task each, weights 1 and 3, both running the whole time: each holds one
    # slot, which is all the heavier one's single task can use.
    tasks = [
        task(1, submitted=0, started=0, finished=10),
        task(2, weight=3, submitted=0, started=0, finished=10),
    ]
    by_name = sweep(tasks, until=10)
    assert by_name["alice"].due_seconds == pytest.approx(10.0)
    assert by_name["bob"].due_seconds == pytest.approx(10.0)
    assert shares.share_fairness(list(by_name.values())) == pytest.approx(1.0)


def test_dividing_slots_by_weight_caps_each_user_at_its_tasks():
    assert shares.divide_by_weight(1, {1: (1, 5), 2: (3, 5)}) == {
        1: pytest.approx(0.25),
        2: pytest.approx(0.75),
    }
    assert shares.divide_by_weight(2, {1: (1, 1), 2: (3, 1)}) == {1: 1.0, 2: 1.0}
    parts = shares.divide_by_weight(3, {1: (1, 5), 2: (3, 1), 3: (1, 5)})
    assert parts == {1: pytest.approx(1.0), 2: 1.0, 3: pytest.approx(1.0)}
    parts = shares.divide_by_weight(4, {1: (1, 9), 2: (3, 2), 3: (2, 9)})
    assert parts[2] == 2.0 and parts[1] == pytest.approx(2 / 3) and parts[3] == pytest.approx(4 / 3)


def test_an_aged_task_leaves_its_level_and_its_run_is_its_users_due():
    # max_wait 30 s. bob runs at level 0 for 40 s; alice and carol wait at level 3, which
    # receives nothing. alice's task ages at 30 s and runs from 40 s oldest-first: not by
    # weight, so not in contention, and carol (still waiting at level 3) is due none of it.
    tasks = [
        task(2, submitted=0, started=0, finished=40),
        task(1, level=3, submitted=0, started=40, finished=50),
        task(3, level=3, submitted=0),
    ]
    by_name = sweep(tasks, until=50, max_wait=30)
    assert by_name["alice"].service_seconds == 10.0
    assert by_name["alice"].entitled == pytest.approx(10 / 50)
    assert by_name["carol"].due_seconds == 0.0
    assert shares.share_fairness(list(by_name.values())) is None


def test_the_period_clips_the_tasks_and_grouped_rows_only_name_their_user():
    tasks = [
        task(1, submitted=-30, started=-20, finished=10),  # 10 s inside
        task(1, submitted=5, started=10, finished=40),  # 30 s
        task(2, submitted=-100, started=-90, finished=-1),  # ended before: not listed
        task(3, submitted=100),  # submitted at the end: not listed
        task(4, weight=2, submitted=-2000, count=40),  # 40 tasks waiting, aged long ago
    ]
    by_name = sweep(tasks, until=100, max_wait=600)
    assert set(by_name) == {"alice", "dave"}
    assert by_name["alice"].service_seconds == pytest.approx(40.0)
    assert by_name["alice"].share == by_name["alice"].entitled == 1.0
    assert (by_name["dave"].service_seconds, by_name["dave"].weight) == (0.0, 2)


def test_the_series_keep_the_largest_received_or_entitled_and_add_up_the_rest():
    def row(user, share, entitled, weight=1):
        return shares.UserShare(user, USERS[user], weight, 0.0, share, entitled, 0.0, 0.0)

    # dave received nothing but was entitled to much: he is kept, one by one, before carol.
    rows = [row(1, 0.5, 0.3), row(2, 0.3, 0.2, 3), row(3, 0.2, 0.1, 2), row(4, 0.0, 0.4)]
    series = metrics.share_series(rows, 2)
    assert [s.user for s in series] == ["alice", "dave", metrics.OTHERS]
    others = series[-1]
    assert (others.share, others.entitled, others.weight) == pytest.approx((0.5, 0.3, 5))
    assert sum(s.share for s in series) == pytest.approx(1.0)
    assert [s.user for s in metrics.share_series(rows, 4)] == ["alice", "dave", "bob", "carol"]
    assert [s.user for s in metrics.share_series(rows, 0)] == [metrics.OTHERS]
    assert metrics.share_series([], 3) == []
    # A user named like the aggregate is added up in it: no label is given twice.
    named_so = [row(1, 0.6, 0.6), shares.UserShare(9, metrics.OTHERS, 2, 0.0, 0.4, 0.4, 0, 0)]
    assert [(s.user, s.share) for s in metrics.share_series(named_so, 5)] == [
        ("alice", 0.6),
        (metrics.OTHERS, 0.4),
    ]


def test_jain_index_of_nothing_is_none():
    assert jain_index([]) is None
    assert jain_index([0.0, 0.0]) is None


def test_a_percentile_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        PercentileCont("started_at", fraction=95)


def test_a_run_that_began_alone_is_its_users_own_to_its_end():
    # make run's newcomer walk: alice's 60 s task starts with level 0 to herself; bob (weight 3)
    # submits a second later and waits for the one slot. Nothing was decided while both were
    # there (a started task is never interrupted), so nobody is behind: no contention at all.
    tasks = [
        task(1, submitted=0, started=0, finished=60),
        *(task(2, weight=3, submitted=1, started=s, finished=s + 60) for s in (60, 120)),
    ]
    by_name = sweep(tasks, until=180)
    alice, bob = by_name["alice"], by_name["bob"]
    assert (alice.contended_seconds, alice.due_seconds) == (0.0, 0.0)
    assert (bob.contended_seconds, bob.due_seconds) == (0.0, 0.0)
    assert (alice.entitled, bob.entitled) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert shares.share_fairness(list(by_name.values())) is None


def test_a_run_that_began_in_contention_is_judged_to_its_end():
    # The same, but alice's second task starts at 60 while bob's wait (bob should have gone
    # first, weight 3): that run is decided in contention and reads as alice ahead of her due.
    tasks = [
        task(1, submitted=0, started=0, finished=60),
        task(1, submitted=0, started=60, finished=120),
        task(2, weight=3, submitted=1, started=120, finished=180),
    ]
    by_name = sweep(tasks, until=180)
    alice, bob = by_name["alice"], by_name["bob"]
    assert alice.contended_seconds == 60.0
    assert (alice.due_seconds, bob.due_seconds) == (pytest.approx(15.0), pytest.approx(45.0))
    assert shares.share_fairness(list(by_name.values())) == pytest.approx(0.5)
