"""PQH_CHARGE=time on the real stack: PostgreSQL, Redis and a real Celery worker.

A task is charged its user's recent mean run time at admission, in the window that sets the
level and in its level's virtual time, and what its run took once it has ended.
"""

import pytest
from django.core.management import call_command

from fairqueue.queue import member
from pqh_site.core import core
from tasks_app.models import TaskRecord
from tasks_app.services.actions import task_cancel
from tasks_app.services.submission import task_submit
from tests.conftest import Worker, make_user, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BOUNDS = [0.5, 1.0, 2.0, 3.0, 4.0]  # seconds of service in the window, per unit of weight
ENV = {
    "PQH_CHARGE": "time",
    "PQH_TASK_CALLABLE": "tests.callables.timed",
    "PQH_LEVEL_BOUNDS_SECONDS": ",".join(map(str, BOUNDS)),
    "PQH_TASK_SECONDS": "0.2",
}


@pytest.fixture
def by_time(settings):
    """This process (the submitting side) charges by time, with the workers' bounds."""
    settings.PQH_CHARGE = "time"
    settings.PQH_LEVEL_BOUNDS_SECONDS = BOUNDS
    settings.PQH_TASK_SECONDS = 0.2
    return settings


@pytest.fixture
def time_worker(worker_env, celery_worker):
    """A worker that charges by time and runs tests.callables.timed, alone on the queues."""
    celery_worker.stop()
    worker = Worker(concurrency=1, env={**worker_env, **ENV})
    worker.start()
    yield worker
    worker.stop()
    celery_worker.start()


def ended(*records) -> bool:
    ids = [r.pk for r in records]
    return not TaskRecord.objects.filter(pk__in=ids, status__in=["PENDING", "STARTED"]).exists()


def mean_of(user) -> float | None:
    return core().queue.estimate(user.pk)


def test_a_user_whose_tasks_take_ten_times_longer_reaches_a_higher_level_sooner(
    by_time, time_worker
):
    long_user, _ = make_user("long")
    short_user, _ = make_user("short")
    # One run each teaches pqh how long their tasks take.
    first = [task_submit(user=long_user, x={"s": 0.5}), task_submit(user=short_user, x={"s": 0.05})]
    wait_for(lambda: ended(*first), timeout=30)
    wait_for(lambda: mean_of(long_user) and mean_of(short_user), timeout=10)
    assert mean_of(long_user) == pytest.approx(0.5, abs=0.1)
    assert mean_of(short_user) == pytest.approx(0.05, abs=0.05)

    longs = [task_submit(user=long_user, x={"s": 0.5}) for _ in range(4)]
    shorts = [task_submit(user=short_user, x={"s": 0.05}) for _ in range(4)]
    # Each submission is charged its user's mean: long climbs by ~0.5 s a task, short by ~0.05.
    assert [t.level for t in longs] == [1, 2, 2, 3]
    assert [t.level for t in shorts] == [0, 0, 0, 0]
    assert all(t.charge == "time" for t in longs + shorts)
    assert longs[1].usage_before == pytest.approx(longs[0].usage_before + longs[0].cost)
    # Counting tasks, both would be at level 1 for all four (counts 1 to 4, bound 1).
    wait_for(lambda: ended(*longs, *shorts), timeout=60)


def test_the_estimate_is_corrected_when_the_task_ends(by_time, time_worker):
    user, _ = make_user("alice")
    record = task_submit(user=user, x={"s": 0.6})
    assert record.cost == 0.2  # no history: PQH_TASK_SECONDS
    assert core().windows.usage(user_id=user.pk).usage == pytest.approx(0.2)
    wait_for(lambda: ended(record), timeout=30)
    record.refresh_from_db()
    assert record.run_seconds == pytest.approx(0.6, abs=0.1)
    # The window now holds what it took, and the user's mean learned it.
    wait_for(lambda: mean_of(user) is not None, timeout=10)
    assert core().windows.usage(user_id=user.pk).usage == pytest.approx(record.run_seconds)
    assert mean_of(user) == pytest.approx(record.run_seconds)
    assert task_submit(user=user, x={"s": 0.01}).cost == pytest.approx(record.run_seconds)


def test_a_task_redelivered_after_its_worker_was_killed_is_charged_once(
    by_time, time_worker, tmp_path
):
    user, _ = make_user("alice")
    record = task_submit(user=user, x={"s": 0.4, "die_once": str(tmp_path / "died")})
    wait_for(lambda: ended(record), timeout=60)
    record.refresh_from_db()
    assert record.status == "SUCCESS" and record.attempts == 2  # the first run was lost
    assert record.run_seconds == pytest.approx(0.4, abs=0.1)  # the run that finished
    wait_for(lambda: mean_of(user) is not None, timeout=10)
    assert core().redis.hget(core().keys.key("est", user.pk), "n") == "1"  # charged once
    assert core().windows.usage(user_id=user.pk).usage == pytest.approx(record.run_seconds)


def test_cancel_refunds_the_charge_and_moves_the_users_later_tasks_up(by_time, no_worker):
    by_time.PQH_LEVEL_BOUNDS_SECONDS = [100, 200, 300, 400, 500]  # all three at level 0
    user, _ = make_user("alice")
    core().redis.hset(core().keys.key("est", user.pk), mapping={"n": 5, "mean": "0.25"})
    tasks = [task_submit(user=user, x={"s": 0.25}) for _ in range(4)]
    assert [t.cost for t in tasks] == [0.25] * 4 and {t.level for t in tasks} == {0}
    assert core().windows.usage(user_id=user.pk).usage == pytest.approx(1.0)

    def tag(record):
        return core().redis.zscore(core().keys.key("q", "lvl", 0), member(record.queue_seq))

    before = tag(tasks[3])
    task_cancel(user=user, task_id=tasks[2].pk)
    assert core().windows.usage(user_id=user.pk).usage == pytest.approx(0.75)
    assert tag(tasks[3]) == pytest.approx(before - 0.25)


def test_a_weight_change_reaches_the_tasks_already_queued(settings, no_worker):
    settings.PQH_LEVEL_BOUNDS = [1000, 2000, 3000, 4000, 5000]  # every task at level 0
    a, _ = make_user("a")
    b, _ = make_user("b")
    queued = [task_submit(user=a, x=i) for i in range(12)]
    queued += [task_submit(user=b, x=i) for i in range(12)]
    # a's first task went to the broker; the others wait, a's and b's tags one apart each.
    call_command("set_weight", "a", "3")  # a saved weight row: its backlog is respaced

    def order():
        places = core().queue.places((str(t.pk), t.queue_seq, t.level) for t in queued)
        ranked = sorted((p.position, t.user.username) for p, t in zip(places, queued, strict=True))
        return "".join(name for _, name in ranked)

    # From a's first waiting task on, a's are 1/3 apart and b's still 1: three of a's for each
    # of b's, where they alternated before.
    assert order()[:17] == "ababaaabaaabaaaba"
