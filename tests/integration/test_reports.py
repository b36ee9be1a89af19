"""Fairness figures: shares beside weights, waits per level, load now, activity over time."""

from datetime import UTC, datetime, timedelta

import pytest
from celery import states
from django.contrib.auth import get_user_model

from fairqueue.shares import share_fairness
from tasks_app.models import TaskRecord
from tasks_app.selectors import reports
from tests.conftest import make_user
from tests.queue_state import record_submission

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


HOUR = timedelta(hours=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(
    user, *, submitted, started=None, finished=None, status=None, level=0, weight=1, team="",
    team_weight=None,
):  # fmt: skip
    """A task's row as it was: waiting, running or ended at the given times."""
    if status is None:
        status = states.SUCCESS if finished else states.STARTED if started else states.PENDING
    return TaskRecord.objects.create(
        user=user,
        level=level,
        weight=weight,
        team=team,
        team_weight=team_weight,
        count_before=0,
        input=None,
        status=status,
        submitted_at=submitted,
        started_at=started,
        finished_at=finished,
    )


@pytest.mark.django_db
def test_shares_read_the_periods_tasks_in_one_query_and_divide_only_what_was_shared(
    alice, bob, charlie, settings, django_assert_num_queries
):
    settings.PQH_MAX_WAIT_SECONDS = 600
    dora, _ = make_user("dora", weight=3)
    erin, _ = make_user("erin", weight=2)
    since, now = at(0), at(100)
    # Alice: one task inside the period (30 s), one that started before it (10 s inside),
    # alone at level 0 until 40 s.
    record(alice[0], submitted=at(5), started=at(10), finished=at(40))
    record(alice[0], submitted=at(-30), started=at(-20), finished=at(10))
    # Dora (weight 3) submits two at 45 s: the first runs from 50 s to 90 s with level 0 to
    # herself (her own, though Charlie arrives during it); the second starts at 90 s while
    # Charlie waits, and runs to now.
    record(dora, submitted=at(45), started=at(50), finished=at(90), weight=3)
    record(dora, submitted=at(45), started=at(90), weight=3)
    # Charlie (weight 6) waits from 85 s: the last 10 s, decided while he was there, are shared.
    record(charlie[0], submitted=at(85), weight=6)
    # Erin's three tasks waited past the aging bound before the period: one row, her name only.
    for _ in range(3):
        record(erin, submitted=at(-1000), weight=2)
    # Bob's task ended before the period and one is submitted at its end: he is not listed.
    record(bob[0], submitted=at(-100), started=at(-90), finished=at(-1))
    record(bob[0], submitted=at(100))
    assert len(reports._period_tasks(since=since, now=now, max_wait=600)) == 6
    with django_assert_num_queries(1):
        shares = reports.user_shares(since=since, now=now)
    by_name = {s.username: s for s in shares}
    assert set(by_name) == {"alice", "dora", "charlie", "erin"}
    assert by_name["alice"].service_seconds == pytest.approx(40.0)
    assert by_name["dora"].service_seconds == pytest.approx(50.0)
    # From 90 s, Dora's 10 s are divided 3 : 6 between her and Charlie.
    assert by_name["dora"].contended_seconds == pytest.approx(10.0)
    assert by_name["dora"].due_seconds == pytest.approx(10 * 3 / 9)
    assert by_name["charlie"].due_seconds == pytest.approx(10 * 6 / 9)
    assert by_name["alice"].share == by_name["alice"].entitled == pytest.approx(40 / 90)
    assert by_name["dora"].share == pytest.approx(50 / 90)
    assert by_name["dora"].entitled == pytest.approx((40 + 10 / 3) / 90)
    assert by_name["charlie"].entitled == pytest.approx(20 / 3 / 90)
    assert (by_name["erin"].service_seconds, by_name["erin"].weight) == (0.0, 2)
    assert [s.username for s in shares] == ["dora", "alice", "charlie", "erin"]
    assert share_fairness(shares) == pytest.approx(0.5)  # 3× and 0× their due


@pytest.mark.django_db
def test_shares_cost_one_query_however_many_users_contend(django_assert_num_queries):
    for i in range(30):
        user = get_user_model().objects.create(username=f"user{i:02d}")  # no password: fast
        record(user, submitted=at(1), started=at(2), finished=at(3 + i), weight=1 + i % 3)
    with django_assert_num_queries(1):
        shares = reports.user_shares(since=at(0), now=at(100))
    assert len(shares) == 30
    assert sum(s.share for s in shares) == pytest.approx(1.0)
    assert sum(s.entitled for s in shares) == pytest.approx(1.0)
    assert share_fairness(shares) is not None


@pytest.mark.django_db
def test_past_the_bound_on_tasks_the_shares_are_refused_not_computed(alice, monkeypatch):
    monkeypatch.setattr(reports, "REPORT_MAX_TASKS", 4)
    for i in range(3):
        record(alice[0], submitted=at(i), started=at(i), finished=at(i + 1))
    for _ in range(10):  # waited past the aging bound before the period: one row in all
        record(alice[0], submitted=at(-10_000))
    assert len(reports._period_tasks(since=at(0), now=at(100), max_wait=600)) == 4
    assert len(reports.user_shares(since=at(0), now=at(100))) == 1
    record(alice[0], submitted=at(50))
    with pytest.raises(reports.PeriodTooBusy, match="more than 4 tasks were alive"):
        reports.user_shares(since=at(0), now=at(100))


@pytest.mark.django_db
def test_wait_percentiles_per_level_over_the_tasks_started_in_the_period(
    alice, django_assert_num_queries
):
    for wait in range(1, 21):  # waits of 1 … 20 s at level 2
        record(alice[0], submitted=at(50), started=at(50 + wait), finished=at(80), level=2)
    record(alice[0], submitted=at(0), started=at(3), finished=at(4), level=0)
    # Started before the period, or not started: not counted.
    record(alice[0], submitted=at(-600), started=at(-1), finished=at(1), level=0)
    record(alice[0], submitted=at(-600), level=5)
    with django_assert_num_queries(1):
        waits = reports.wait_percentiles(since=at(0), now=at(100))
    assert [w.level for w in waits] == [0, 1, 2, 3, 4, 5]
    assert (waits[0].started, waits[0].p50, waits[0].longest) == (1, 3.0, 3.0)
    assert waits[1] == reports.LevelWaits(level=1, started=0, p50=None, p95=None, longest=None)
    assert waits[2].started == 20
    assert waits[2].p50 == pytest.approx(10.5)
    assert waits[2].p95 == pytest.approx(1 + 0.95 * 19)
    assert waits[2].longest == 20.0
    assert waits[5].started == 0


@pytest.mark.django_db
def test_level_load_counts_queued_and_running_now_and_the_oldest_wait(
    alice, bob, django_assert_num_queries
):
    record(alice[0], submitted=at(10), level=5)
    record(bob[0], submitted=at(40), level=5)
    record(alice[0], submitted=at(20), started=at(30), level=1)
    record(alice[0], submitted=at(20), started=at(30), finished=at(35), level=1)
    record(bob[0], submitted=at(20), status=states.REVOKED, finished=at(25), level=0)
    with django_assert_num_queries(1):
        load = reports.level_load(now=at(100))
    assert [(row.queued, row.running) for row in load] == [
        (0, 0),
        (0, 1),
        (0, 0),
        (0, 0),
        (0, 0),
        (2, 0),
    ]
    assert load[5].oldest_wait == 90.0
    assert load[1].oldest_wait is None


@pytest.mark.django_db
def test_activity_counts_submissions_and_starts_per_bucket(alice, django_assert_num_queries):
    record(alice[0], submitted=at(-5))  # before the period
    record(alice[0], submitted=at(0), started=at(61), finished=at(62))
    record(alice[0], submitted=at(59), started=at(119))
    record(alice[0], submitted=at(60))
    record(alice[0], submitted=at(299))
    with django_assert_num_queries(2):
        seen = reports.activity(since=at(0), now=at(300), step=timedelta(minutes=1))
    assert seen.submitted == [2, 1, 0, 0, 1]
    assert seen.started == [0, 2, 0, 0, 0]
    # A period that is not a whole number of steps gets a last, partial bucket.
    assert len(reports.activity(since=at(0), now=at(301), step=timedelta(minutes=1)).started) == 6


def test_an_empty_or_reversed_period_is_refused():
    with pytest.raises(ValueError, match="must end after it starts"):
        reports.user_shares(since=at(10), now=at(10))


@pytest.mark.django_db
def test_largest_windows_come_first_with_weight_and_next_level(alice, bob, charlie):
    now = 1_000_000.0
    for i in range(7):
        record_submission(user_id=alice[0].pk, member=f"a{i}", now=now - i)
        record_submission(user_id=charlie[0].pk, member=f"c{i}", now=now - i)
    record_submission(user_id=bob[0].pk, member="b0", now=now)
    rows = reports.largest_windows(now=now, limit=2)
    assert [(r.username, r.count, r.weight, r.next_level) for r in rows] == [
        ("alice", 7, 1, 2),
        ("charlie", 7, 6, 1),
    ]
