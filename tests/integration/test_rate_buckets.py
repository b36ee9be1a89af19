"""A request rate is a token bucket: parsed from DRF's "N/period", counted atomically in Redis."""

import time

import pytest

from fairqueue.rates import Rate
from pqh_site.core import core

RATE = Rate(requests=3, seconds=1, text="3/s")  # a bucket of 3, one back every 1/3 s


def test_a_full_bucket_lets_a_burst_through_then_says_when_the_next_one_may_come():
    now = 1000.0
    assert [core().rates.take(scope="t", ident=1, rate=RATE, now=now) for _ in range(3)] == [
        0.0
    ] * 3
    wait = core().rates.take(scope="t", ident=1, rate=RATE, now=now)
    assert wait == pytest.approx(1 / 3)
    # A refused request is not counted: just after the wait, one gets through, one does not.
    assert core().rates.take(scope="t", ident=1, rate=RATE, now=now + wait) == 0.0
    assert core().rates.take(scope="t", ident=1, rate=RATE, now=now + wait) == pytest.approx(1 / 3)


def test_the_sustained_rate_is_one_per_interval():
    now = 2000.0
    for _ in range(3):
        core().rates.take(scope="t", ident=2, rate=RATE, now=now)
    allowed = sum(
        core().rates.take(scope="t", ident=2, rate=RATE, now=now + i * 0.01) == 0.0
        for i in range(1, 301)
    )
    assert allowed == 9  # three seconds at 3/s, after the burst


def test_buckets_are_per_scope_and_per_client():
    now = 3000.0
    for _ in range(3):
        assert core().rates.take(scope="a", ident=1, rate=RATE, now=now) == 0.0
    assert core().rates.take(scope="a", ident=1, rate=RATE, now=now) > 0
    assert core().rates.take(scope="b", ident=1, rate=RATE, now=now) == 0.0
    assert core().rates.take(scope="a", ident=2, rate=RATE, now=now) == 0.0


def test_an_idle_bucket_expires_from_redis():

    core().rates.take(
        scope="t", ident=3, rate=Rate(requests=10, seconds=1, text="10/s"), now=time.time()
    )
    ttl_ms = core().redis.pttl(core().keys.rate("t", 3))
    assert 0 < ttl_ms <= 100  # full again one interval later: nothing left to remember
    time.sleep(0.15)
    assert not core().redis.exists(core().keys.rate("t", 3))


def test_a_request_is_judged_at_the_buckets_clock_not_its_late_own():
    # 1000/s: a bucket of 1000 that is full again one second after it was last used. A request
    # whose process read its clock 2 s before it reached Redis (a loaded web process), after a
    # request that came on time, is 2 s "older" than the bucket's last request: judged at its
    # own clock it is refused although the rate is nowhere near reached.
    rate = Rate(requests=1000, seconds=1, text="1000/s")
    real_now = time.time()
    assert core().rates.take(scope="late", ident=1, rate=rate, now=real_now) == 0.0
    assert core().rates.take(scope="late", ident=1, rate=rate, now=real_now - 2.0) > 0
    # What the service does: no clock of its own, the bucket's (Redis's TIME) for every request.
    # Requests reach it one after the other, so none is older than the one before it.
    assert all(core().rates.take(scope="late", ident=2, rate=rate) == 0.0 for _ in range(900))
    seconds, micros = core().redis.time()
    tat = float(core().redis.get(core().keys.rate("late", 2)))
    # Counted against Redis's clock: 900 intervals from the first request, and that is past.
    assert 0 < tat - (seconds + micros / 1e6) <= 0.9 + 1e-3
