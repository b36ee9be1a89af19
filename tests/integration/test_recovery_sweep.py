"""The recovery sweeps: after Redis lost its data every queued row comes back, in submit order;
in steady state a sweep looks only at recent rows, and a slow full pass catches the rest."""

import time
from datetime import UTC, datetime

import pytest
from celery import states

from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.services import recovery
from tests.queue_state import active_count, queue_unknown

from .test_fair_queue import own_prefix  # noqa: F401  (keys of its own, no worker takes them)

pytestmark = pytest.mark.django_db

NOW = time.time()


def row(user, *, ago: float, level: int = 1, status: str = states.PENDING) -> TaskRecord:
    """An accepted task as PostgreSQL holds it, submitted `ago` seconds before NOW."""
    return TaskRecord.objects.create(
        user=user,
        level=level,
        weight=1,
        count_before=1,
        input="x",
        status=status,
        submitted_at=datetime.fromtimestamp(NOW - ago, tz=UTC),
    )


def lose_redis():
    """What a restart without persistence does to pqh's keys."""
    redis = core().redis
    names = list(redis.scan_iter(f"{core().keys.key('')}*"))
    if names:
        redis.delete(*names)


def hold_releases():
    """A released task sits in the level-0 queue: nothing more is released, positions stay put."""
    core().redis.lpush(list(core().config.broker_queues)[0], "released before")


def positions_of(records):
    return [
        core().queue.places([(str(r.pk), r.queue_seq, r.level)], now=NOW)[0].position
        for r in records
    ]


def test_after_redis_lost_its_data_every_queued_row_comes_back_in_submit_order(alice, bob):
    ancient = [row(alice[0], ago=3 * 86400 + i, level=5) for i in (2, 1, 0)]
    recent = [row(bob[0], ago=1, level=0), row(alice[0], ago=0.5, level=2)]
    row(alice[0], ago=7200, status=states.STARTED)  # running on a worker: not queued
    row(bob[0], ago=60, status=states.SUCCESS)
    hold_releases()
    assert recovery.task_recover_lost(now=NOW) == 5
    # The ancient ones have waited the bound: first, oldest first; then by level.
    assert positions_of([*ancient, *recent]) == [1, 2, 3, 4, 5]
    # The active sets are rebuilt from what is queued or running.
    assert active_count(user_id=alice[0].pk) == 5  # 3 ancient, 1 recent, running
    assert active_count(user_id=bob[0].pk) == 1
    assert core().sweeps.epoch() is not None
    assert recovery.task_recover_lost(now=NOW + 1) == 0  # known now: not queued twice


def test_in_steady_state_a_sweep_looks_only_at_rows_since_its_mark(alice):
    hold_releases()
    recovery.task_recover_lost(now=NOW - 600)  # the first sweep marks the epoch
    recovery.task_recover_lost(now=NOW - 200)  # a regular one: it has looked up to NOW - 230
    old_loss = row(alice[0], ago=400)  # before the mark: the regular sweeps do not look again
    new_loss = row(alice[0], ago=100)
    assert recovery.task_recover_lost(now=NOW) == 1
    assert queue_unknown([(str(old_loss.pk), old_loss.queue_seq)]) == [str(old_loss.pk)]
    # The slow full pass, once PQH_FULL_SWEEP_SECONDS have passed, finds it.
    core().redis.delete(core().keys.key("sweep", "full"))
    assert recovery.task_recover_lost(now=NOW + 1) == 1
    assert queue_unknown([(str(r.pk), r.queue_seq) for r in (old_loss, new_loss)]) == []


def test_a_row_younger_than_the_grace_is_left_to_the_web_process_queueing_it(alice):
    hold_releases()
    recovery.task_recover_lost(now=NOW - 600)
    being_queued = row(alice[0], ago=5)
    assert recovery.task_recover_lost(now=NOW, grace=30) == 0
    assert queue_unknown([(str(being_queued.pk), being_queued.queue_seq)])


def test_the_full_pass_frees_places_of_tasks_that_ended_or_were_never_recorded(alice):
    hold_releases()
    recovery.task_recover_lost(now=NOW - 600)
    live = row(alice[0], ago=300)
    ended = row(alice[0], ago=300, status=states.SUCCESS)
    core().admissions.restore(
        [
            (alice[0].pk, str(live.pk), NOW - 300),
            (alice[0].pk, str(ended.pk), NOW - 300),  # its finish could not reach Redis
            (alice[0].pk, "0b4d1d5e-0000-4000-8000-000000000000", NOW - 300),  # web died
        ]
    )
    core().redis.delete(core().keys.key("sweep", "full"))
    recovery.task_recover_lost(now=NOW)
    assert core().redis.zrange(core().keys.key("act", alice[0].pk), 0, -1) == [str(live.pk)]


def test_one_worker_sweeps_at_a_time(alice):
    hold_releases()
    row(alice[0], ago=100)
    held = core().sweeps.lock(timeout=30)
    assert held.acquire()
    try:
        assert recovery.task_recover_lost(now=NOW) == 0
    finally:
        held.release()
    assert recovery.task_recover_lost(now=NOW) == 1


def test_a_recovery_that_lost_its_lock_does_not_mark_the_epoch():
    lock = core().sweeps.lock(timeout=30)
    assert lock.acquire()
    lose_redis()  # a restart in the middle of the recovery
    assert core().sweeps.finish_recovery(lock, now=NOW, mark=NOW) is False
    assert core().sweeps.epoch() is None
