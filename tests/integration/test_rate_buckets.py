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
