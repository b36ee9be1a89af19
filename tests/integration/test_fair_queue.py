"""The fair queue on the real Redis (no worker): level order, weighted shares, aging, recovery."""

import itertools
from collections import Counter

import pytest
from django.conf import settings
from django.test import override_settings

from fairqueue.queue import QueuedTask, Release
from fairqueue.testing import count_redis_round_trips
from pqh_site.core import core

_ids = itertools.count()
BIG_BUFFER = 10_000


@pytest.fixture(autouse=True)
def own_prefix(settings):
    """Keys of their own: a test worker running beside must not pick or take these tasks."""
    prefix = f"{settings.PQH_REDIS_PREFIX}unit"
    settings.PQH_REDIS_PREFIX = prefix
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": "{" + prefix + "}:broker:",
    }
    clear = lambda: [core().redis.delete(k) for k in core().redis.scan_iter("{" + prefix + "}:*")]  # noqa: E731
    clear()
    yield
    clear()


# The queue number and level of each task the tests queued (PostgreSQL gives queue numbers in
# arrival order; here a counter does).
_queued: dict[str, tuple[int, int]] = {}


def enqueue(user: int, level: int, weight: int = 1, at: float = 1000.0) -> str:
    seq = next(_ids)
    task_id = f"t{seq}"
    _queued[task_id] = (seq, level)
    with override_settings(PQH_RELEASE_BUFFER=BIG_BUFFER, PQH_MAX_WAIT_SECONDS=1e9):
        # Enqueue without releasing: max_picks=0.
        task = QueuedTask(
            task_id=task_id, seq=seq, user_id=user, level=level, weight=weight, submitted=at
        )
        core().queue.add([task], now=at, max_picks=0)
    return task_id


def cancel(task_id: str) -> bool:
    seq, level = _queued[task_id]
    return core().queue.cancel(task_id=task_id, seq=seq, level=level)


def drain(n: int, *, now: float = 1001.0, max_wait: float = 1e9) -> list[Release]:
    """Pick n tasks one at a time, as a worker taking each released task would."""
    order = []
    with override_settings(PQH_MAX_WAIT_SECONDS=max_wait):
        for _ in range(n):
            picked = core().queue.pick(now=now, max_picks=1)
            if not picked:
                break
            core().queue.confirm([p.task_id for p in picked])
            order.extend(picked)
            core().queue.pick(now=now, max_picks=0, started=picked[0].task_id)
    return order


def owners(releases, by_task):
    return [by_task[r.task_id] for r in releases]


def test_better_levels_are_released_first_whatever_the_arrival_order():
    hog = [enqueue(user=1, level=5) for _ in range(3)]
    newcomer = enqueue(user=2, level=0)
    middle = enqueue(user=3, level=2)
    order = [r.task_id for r in drain(5)]
    assert order == [newcomer, middle, *hog]


def test_weights_share_a_level_in_proportion_one_to_three():
    by_task = {}
    for _ in range(60):
        by_task[enqueue(user=1, level=5, weight=1)] = "light"
        by_task[enqueue(user=2, level=5, weight=3)] = "heavy"
    first_40 = Counter(owners(drain(40), by_task))
    assert first_40["heavy"] == 30
    assert first_40["light"] == 10


def test_weights_one_two_five():
    by_task = {}
    for _ in range(80):
        for user, weight in ((1, 1), (2, 2), (3, 5)):
            by_task[enqueue(user=user, level=4, weight=weight)] = weight
    shares = Counter(owners(drain(80), by_task))
    assert shares == {1: 10, 2: 20, 5: 50}


def test_a_burst_cannot_push_others_at_its_level_to_the_back():
    by_task = {}
    for _ in range(50):
        by_task[enqueue(user=1, level=3)] = "burst"
    by_task[enqueue(user=2, level=3)] = "other"
    first_two = owners(drain(2), by_task)
    assert "other" in first_two


def test_idle_time_earns_no_credit():
    by_task = {}
    for _ in range(20):
        by_task[enqueue(user=1, level=1)] = "steady"
    drain(10)
    # A user arriving late starts at the level's clock, not at zero: it alternates, it does not
    # get ten tasks in a row.
    for _ in range(10):
        by_task[enqueue(user=2, level=1)] = "late"
    next_ten = owners(drain(10), by_task)
    assert next_ten.count("late") == 5


def test_a_task_past_the_bound_is_released_first_into_level_zero():
    old = enqueue(user=1, level=5, at=1000.0)
    fresh = [enqueue(user=u, level=0, at=1000.0 + u) for u in range(2, 6)]
    first = drain(1, now=1010.0, max_wait=5.0)
    assert [r.task_id for r in first] == [old]
    assert first[0].aged and first[0].target_level == 0
    rest = drain(4, now=1010.0, max_wait=1e9)
    assert [r.task_id for r in rest] == fresh


def test_aged_tasks_go_oldest_first_and_before_the_bound_nothing_ages():
    a = enqueue(user=1, level=5, at=1000.0)
    b = enqueue(user=2, level=4, at=1001.0)
    c = enqueue(user=3, level=0, at=1002.0)
    assert [r.task_id for r in drain(1, now=1004.0, max_wait=5.0)] == [c]
    assert [r.task_id for r in drain(2, now=1006.5, max_wait=5.0)] == [a, b]


def test_release_waits_for_room_but_a_better_level_still_goes():
    buffer = settings.PQH_RELEASE_BUFFER
    level3 = list(core().config.broker_queues)[3]
    core().redis.lpush(level3, *[f"fake{i}" for i in range(buffer)])
    worse = enqueue(user=1, level=5)
    better = enqueue(user=2, level=0)
    assert [r.task_id for r in core().queue.pick(now=1001.0)] == [better]
    assert core().queue.pick(now=1001.0) == []  # the confirmed one is gone, but level 3 is full
    core().queue.confirm([better])
    assert core().queue.pick(now=1001.0) == []
    core().redis.delete(level3)
    assert [r.task_id for r in core().queue.pick(now=1001.0)] == [worse]


def test_an_aged_task_stuck_in_the_broker_stops_releases_until_a_worker_takes_it():
    stuck = enqueue(user=1, level=5, at=1000.0)
    assert [r.task_id for r in core().queue.pick(now=1000.5)] == [stuck]
    core().redis.lpush(list(core().config.broker_queues)[5], "its message")  # as the publish does
    core().queue.confirm([stuck])
    fresh = enqueue(user=2, level=0, at=1001.0)
    with override_settings(PQH_MAX_WAIT_SECONDS=5.0):
        # Before the bound a better level still overtakes the released level-5 task...
        assert [r.task_id for r in core().queue.pick(now=1002.0)] == [fresh]
        core().queue.confirm([fresh])
        core().queue.pick(now=1002.0, max_picks=0, started=fresh)
        later = enqueue(user=3, level=0, at=1003.0)
        # ...but once it has waited the bound, nothing more is released ahead of it,
        assert core().queue.pick(now=1006.0) == []
        # until a worker has taken it.
        assert [r.task_id for r in core().queue.pick(now=1006.0, started=stuck)] == [later]


def test_an_unconfirmed_release_is_recovered():
    task = enqueue(user=1, level=2)
    first = core().queue.pick(now=1001.0)
    assert [r.task_id for r in first] == [task] and not first[0].recovered
    # The releaser died before publishing: nothing is released again before the timeout...
    assert core().queue.pick(now=1001.0 + settings.PQH_RELEASE_RECOVER_SECONDS / 2) == []
    # ...and after it, the same task is handed out again.
    again = core().queue.pick(now=1002.0 + settings.PQH_RELEASE_RECOVER_SECONDS)
    assert [(r.task_id, r.recovered) for r in again] == [(task, True)]
    core().queue.confirm([task])
    assert core().queue.pick(now=1e6) == []


def test_cancel_removes_a_waiting_task_but_not_a_released_one():
    keep = enqueue(user=1, level=1)
    gone = enqueue(user=1, level=1)
    assert cancel(gone) is True
    assert core().queue.waiting_count() == 1
    released = drain(5)
    assert [r.task_id for r in released] == [keep]
    assert cancel(keep) is False


def test_enqueue_and_release_is_one_round_trip():
    enqueue(user=1, level=0)  # loads the script
    drain(1)
    with count_redis_round_trips() as calls:
        task = QueuedTask(
            task_id="rt", seq=next(_ids), user_id=1, level=0, weight=1, submitted=1000.0
        )
        core().queue.add([task], now=1000.0)
    assert calls == ["EVALSHA"]


def test_enqueueing_a_known_task_again_changes_nothing():
    task = enqueue(user=1, level=2)
    again = QueuedTask(
        task_id=task, seq=_queued[task][0], user_id=1, level=2, weight=1, submitted=1000.0
    )
    core().queue.add([again], now=1000.0, max_picks=0)
    assert core().queue.waiting_count() == 1
    assert [r.task_id for r in drain(5)] == [task]


def test_users_with_equal_tags_are_served_in_arrival_order_not_by_id():
    # User ids as text would order 10 < 2 < 3; arrival order is 2, 10, 3.
    arrivals = [enqueue(user=u, level=0, at=1000.0 + i) for i, u in enumerate((2, 10, 3))]
    assert [r.task_id for r in drain(3)] == arrivals


def test_cancelling_a_head_keeps_the_users_place():
    first = enqueue(user=1, level=2, at=1000.0)
    second = enqueue(user=1, level=2, at=1001.0)
    other = enqueue(user=2, level=2, at=1002.0)
    assert cancel(first) is True
    assert [r.task_id for r in drain(2)] == [second, other]
