"""Queue positions on the real Redis: exact against the order tasks are actually released, and
computed with work that does not grow with the queue's depth."""

import itertools
import random

import pytest
from django.test import override_settings

from fairqueue.queue import QueuedTask
from fairqueue.testing import PrivateRedis
from pqh_site.core import core

from .test_fair_queue import _queued, cancel, drain, enqueue, own_prefix  # noqa: F401

M = 30.0  # the aging bound in these tests


def positions(task_ids, *, now):
    with override_settings(PQH_MAX_WAIT_SECONDS=M):
        places = core().queue.places([(t, _queued[t][0], _queued[t][1]) for t in task_ids], now=now)
    return [None if p is None else p.position for p in places]


@pytest.mark.parametrize("seed", range(6))
def test_positions_predict_the_release_order_exactly(seed):
    rng = random.Random(seed)
    weights = {user: rng.choice([1, 2, 3, 5]) for user in range(1, 8)}
    clock = itertools.count()

    def burst(n):
        return [
            enqueue(
                user=(user := rng.choice(list(weights))),
                level=rng.choice([0, 1, 1, 2, 5, 5]),
                weight=weights[user],
                at=1000.0 + next(clock),
            )
            for _ in range(n)
        ]

    # A first round is partly served, so that levels' clocks and users' finish tags are not zero;
    # then more arrive, a weight changes, and some are cancelled.
    first = burst(60)
    served = {r.task_id for r in drain(25, now=1000.0 + 60, max_wait=1e9)}
    weights[1] = 4
    waiting = [t for t in first if t not in served] + burst(60)
    for task in rng.sample(waiting, 8):
        assert cancel(task)
        waiting.remove(task)
    # Time has passed: the oldest tasks have waited the bound and go first, oldest first.
    now = 1000.0 + 35 + M
    predicted = positions(waiting, now=now)
    assert sorted(predicted) == list(range(len(waiting)))
    order = [r.task_id for r in drain(len(waiting), now=now, max_wait=M)]
    assert order == [t for _, t in sorted(zip(predicted, waiting, strict=True))]
    assert any(r for r in drain(0)) is False


def test_a_position_counts_what_sits_in_the_broker_ahead_of_the_task():
    brokers = list(core().config.broker_queues)
    waiting = [enqueue(user=1, level=2, at=1000.0 + i) for i in range(3)]
    better = enqueue(user=2, level=1, at=1003.0)
    # Released earlier and still in the broker: one at level 0, two at level 3.
    core().redis.lpush(brokers[0], "m0")
    core().redis.lpush(brokers[3], "m3a", "m3b")
    assert positions([better, *waiting], now=1004.0) == [1, 2, 3, 4]


def test_a_released_task_counts_the_better_queues_ahead_of_it():
    task = enqueue(user=1, level=4, at=1000.0)
    assert [r.task_id for r in core().queue.pick(now=1001.0)] == [task]
    core().redis.lpush(list(core().config.broker_queues)[4], "its message")
    core().queue.confirm([task])
    core().redis.lpush(list(core().config.broker_queues)[1], "a better one")
    assert positions([task], now=1001.0) == [1]
    # Once a worker has taken it, the fair queue no longer holds it.
    core().queue.pick(now=1001.0, max_picks=0, started=task)
    assert positions([task], now=1001.0) == [None]


def test_cancelling_moves_the_users_later_tasks_up_by_its_share():
    mine = [enqueue(user=1, level=3, at=1000.0 + i) for i in range(3)]
    other = [enqueue(user=2, level=3, at=1010.0 + i) for i in range(3)]
    # Tags: mine 0, 1, 2 and other 0, 1, 2: interleaved, mine first at each tag.
    assert positions([*mine, *other], now=1020.0) == [0, 2, 4, 1, 3, 5]
    assert cancel(mine[0])
    assert positions([mine[1], mine[2], *other], now=1020.0) == [0, 2, 1, 3, 4]


@pytest.fixture
def private_redis(tmp_path, settings):
    """A redis-server of this test's own: its command statistics count only this test's calls."""
    server = PrivateRedis(tmp_path / "redis").start()
    shared, settings.REDIS_URL = settings.REDIS_URL, server.url
    yield server
    settings.REDIS_URL = shared  # before other fixtures clean up on the shared server
    server.stop()


def commands_run(redis) -> int:
    """Every command the server has executed, scripts' own calls included."""
    stats = redis.info("commandstats")
    return sum(entry["calls"] for entry in stats.values())


def test_a_position_and_a_submission_cost_the_same_at_any_depth(private_redis):
    redis = core().redis
    costs = []
    for depth in (20, 2000):
        redis.flushall()
        for i in range(depth):
            enqueue(user=i % 50, level=i % 6, weight=1 + i % 3, at=1000.0 + i / depth)
        probe = enqueue(user=7, level=3, at=1001.0)
        positions([probe], now=1002.0)  # warm: scripts loaded
        before = commands_run(redis)
        positions([probe], now=1002.0)
        with override_settings(PQH_MAX_WAIT_SECONDS=M):
            task = QueuedTask(
                task_id="new", seq=10**9 + depth, user_id=9, level=2, weight=1, submitted=1002.0
            )
            core().queue.add([task], now=1002.0)
        costs.append(commands_run(redis) - before)
    assert costs[0] == costs[1], costs
