"""The fairness figures' arithmetic: shares, entitlements, Jain's index, percentiles; no database."""

from datetime import UTC, datetime, timedelta

import pytest

from tasks_app.selectors import reports

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

HOUR = timedelta(hours=1)


def test_shares_divide_the_service_and_entitlements_divide_the_weights():
    shares = reports.shares_from([(1, "alice", 1, 30.0), (2, "bob", 3, 90.0), (3, "carol", 4, 0.0)])
    assert [s.username for s in shares] == ["bob", "alice", "carol"]
    by_name = {s.username: s for s in shares}
    assert by_name["alice"].share == pytest.approx(0.25)
    assert by_name["bob"].share == pytest.approx(0.75)
    assert by_name["carol"].share == 0.0
    assert by_name["alice"].entitled == pytest.approx(1 / 8)
    assert by_name["bob"].entitled == pytest.approx(3 / 8)
    assert by_name["carol"].entitled == pytest.approx(4 / 8)


def test_nobody_served_is_a_share_of_zero_not_a_division_error():
    shares = reports.shares_from([(1, "alice", 1, 0.0)])
    assert shares[0].share == 0.0 and shares[0].entitled == 1.0
    assert reports.shares_from([]) == []


def test_jain_index_is_one_when_shares_follow_weights_and_falls_when_they_do_not():
    fair = reports.shares_from([(1, "a", 1, 25.0), (2, "b", 3, 75.0)])
    assert reports.share_fairness(fair) == pytest.approx(1.0)
    fifo = reports.shares_from([(1, "a", 1, 50.0), (2, "b", 3, 50.0)])
    # share / entitled = 2 and 2/3: the index the fairness benchmark reports for FIFO at 1:3.
    assert reports.share_fairness(fifo) == pytest.approx(0.8)
    assert reports.jain_index([]) is None
    assert reports.jain_index([0.0, 0.0]) is None


def test_a_percentile_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        reports.PercentileCont("started_at", fraction=95)
