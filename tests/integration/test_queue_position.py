"""Queue positions on the real Redis: exact against the order tasks are actually released, and
computed with work that does not grow with the queue's depth."""

import itertools
import random

import pytest
from django.test import override_settings

from fairqueue.queue import QueuedTask
from fairqueue.testing import PrivateRedis
from pqh_site.core import core

from .test_fair_queue import BIG_BUFFER, _queued, cancel, drain, enqueue, own_prefix  # noqa: F401

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


def release(task_ids, *, now, buffer=BIG_BUFFER):
    """Pick the first waiting tasks (they must be `task_ids`) and publish them to their level
    queues (the message is the task id, as a worker of these tests takes it), confirmed."""
    with override_settings(PQH_RELEASE_BUFFER=buffer, PQH_MAX_WAIT_SECONDS=M):
        picked = core().queue.pick(now=now, max_picks=len(task_ids))
    assert [p.task_id for p in picked] == list(task_ids)
    for p in picked:
        core().redis.lpush(core().config.broker_queues[p.target_level], p.task_id)
    core().queue.confirm([p.task_id for p in picked])


def publish(picked):
    for p in picked:
        core().redis.lpush(core().config.broker_queues[p.target_level], p.task_id)
    core().queue.confirm([p.task_id for p in picked])


def take(*, now, buffer):
    """A worker frees a slot: the release tick has picked what may go, the worker takes the
    first message of the best non-empty level queue and reports its start (a pick); every pick
    is published at once. Return the task taken, or None."""
    with override_settings(PQH_RELEASE_BUFFER=buffer, PQH_MAX_WAIT_SECONDS=M):
        publish(core().queue.pick(now=now, max_picks=4))
        for queue in core().config.broker_queues:
            task_id = core().redis.rpop(queue)
            if task_id:
                publish(core().queue.pick(now=now, max_picks=4, started=task_id))
                return task_id
    return None


def test_a_position_counts_the_released_tasks_a_worker_takes_first():
    r0 = enqueue(user=3, level=0, at=1000.0)
    r3 = [enqueue(user=4, level=3, at=1000.0 + i) for i in range(2)]
    release([r0, *r3], now=1001.0)  # one in the level-0 queue, two in the level-3 queue
    waiting = [enqueue(user=1, level=2, at=1002.0 + i) for i in range(3)]
    better = enqueue(user=2, level=1, at=1005.0)
    # The level-0 message goes first; every waiting task here is released into a better queue
    # than level 3, and taken before the two messages there, which go in the order released.
    assert positions([r0, better, *waiting, *r3], now=1006.0) == [0, 1, 2, 3, 4, 5, 6]
    order = [take(now=1006.0, buffer=BIG_BUFFER) for _ in range(7)]
    assert order == [r0, better, *waiting, *r3]


def test_a_released_task_starts_after_the_better_tasks_still_waiting():
    """The newcomer's demo (two slots, buffer 1): a level-1 task released into its queue while
    level-0 tasks wait starts after all of them; it said 1, like the second level-0 task."""
    started = [enqueue(user=1, level=0, at=1000.0), enqueue(user=1, level=1, at=1001.0)]
    release(started[:1], now=1001.0, buffer=1)
    # Both slots take one: the first start releases the second task.
    assert [take(now=1001.0, buffer=1) for _ in started] == started
    mine = enqueue(user=1, level=1, at=1002.0)
    release([mine], now=1002.0, buffer=1)
    level0 = [enqueue(user=2, level=0, weight=3, at=1003.0 + i) for i in range(3)]
    release(level0[:1], now=1003.0, buffer=1)
    later = enqueue(user=1, level=1, at=1007.0)
    assert positions([*level0, mine, later], now=1008.0) == [0, 1, 2, 3, 4]
    assert [take(now=1008.0, buffer=1) for _ in range(5)] == [*level0, mine, later]
    # Once a worker has taken it, the fair queue no longer holds it.
    assert positions([mine], now=1008.0) == [None]


def test_a_release_past_the_bound_goes_first_and_holds_the_rest_back():
    """A level-5 task released long ago (it has waited the bound in the level-5 queue): nothing
    is released until a worker takes it, so the workers take everything released up to it
    first, and the level-0 task that waits goes after it."""
    old = enqueue(user=1, level=5, at=900.0)
    release([old], now=901.0, buffer=1)
    fresh = enqueue(user=2, level=0, at=1000.0)
    assert positions([old, fresh], now=1000.0) == [0, 1]
    assert [take(now=1000.0, buffer=1) for _ in range(2)] == [old, fresh]


def test_a_message_put_back_in_a_level_queue_counts_before_the_tasks_released_there():
    """kombu puts the message of a lost worker back at the end the workers take from: it is
    taken before the tasks released into that queue, and counted so."""
    released = enqueue(user=1, level=1, at=1000.0)
    release([released], now=1000.0, buffer=1)
    core().redis.rpush(core().config.broker_queues[1], "restored")
    level0 = enqueue(user=2, level=0, at=1001.0)
    level1 = enqueue(user=3, level=1, at=1002.0)
    assert positions([level0, released, level1], now=1003.0) == [0, 2, 3]
    order = [take(now=1003.0, buffer=1) for _ in range(4)]
    assert order == [level0, "restored", released, level1]


@pytest.mark.parametrize("buffer", [1, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_positions_predict_the_start_order_with_tasks_released(seed, buffer):
    """Random users, weights and levels, some tasks released (in the broker, or picked and not
    yet published), and for odd seeds aged tasks and releases past the bound (nothing more is
    released until they start): each position read equals the number of queued tasks the
    workers then take before the task, one at a time, with no arrivals and no more aging."""
    rng = random.Random(seed)
    clock = itertools.count()
    queued = []

    def burst(n, at):
        for _ in range(n):
            user = rng.randint(1, 5)
            level = rng.choice([0, 1, 1, 2, 3, 5])
            queued.append(enqueue(user=user, level=level, weight=user % 3 + 1, at=at + next(clock)))

    # A first burst, released as far as the buffer allows; odd seeds: long enough ago that the
    # released ones have waited the bound by the time positions are read (a stuck release),
    # and the rest have aged.
    base = 960.0 if seed % 2 else 1000.0
    burst(8, base)
    with override_settings(PQH_RELEASE_BUFFER=buffer, PQH_MAX_WAIT_SECONDS=M):
        publish(core().queue.pick(now=base + 8, max_picks=4))
    burst(12, 1000.0)
    now = 1000.0 + 20
    # The last submission's own pick; its last release is not yet published (a slow publisher).
    with override_settings(PQH_RELEASE_BUFFER=buffer, PQH_MAX_WAIT_SECONDS=M):
        picked = core().queue.pick(now=now, max_picks=4)
    publish(picked[:-1])
    predicted = dict(zip(queued, positions(queued, now=now), strict=True))
    assert None not in predicted.values()
    assert sorted(predicted.values()) == list(range(len(queued)))
    publish(picked[-1:])
    order = []
    while (task := take(now=now, buffer=buffer)) is not None:
        order.append(task)
    got = [(t, _queued[t][1], predicted[t]) for t in order]
    assert order == sorted(queued, key=predicted.get), got


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
