"""The sliding window counter on the real Redis: exact, atomic, decaying, namespaced."""

import threading

from django.conf import settings

from fairqueue.testing import count_redis_round_trips
from pqh_site.core import core
from tests.queue_state import record_submission

T = settings.PQH_WINDOW_SECONDS


def test_count_before_grows_by_one_per_submission():
    seen = [record_submission(user_id=1, member=f"t{i}", now=1000.0 + i) for i in range(5)]
    assert seen == [0, 1, 2, 3, 4]
    assert core().windows.count(user_id=1, now=1005.0) == 5


def test_a_submission_stops_counting_exactly_t_seconds_later_whatever_comes_after():
    record_submission(user_id=1, member="old", now=1000.0)
    # A busy user keeps submitting; the original reset a TTL here and never decayed.
    for i in range(10):
        record_submission(user_id=1, member=f"busy{i}", now=1000.0 + T - 10 + i)
    assert core().windows.count(user_id=1, now=1000.0 + T - 0.5) == 11
    assert core().windows.count(user_id=1, now=1000.0 + T + 0.5) == 10
    assert core().windows.count(user_id=1, now=1000.0 + 2 * T + 100) == 0


def test_concurrent_submissions_by_one_user_are_all_counted():
    n = 200
    barrier = threading.Barrier(8)

    def submit(worker: int) -> None:
        barrier.wait()
        for i in range(n // 8):
            record_submission(user_id=7, member=f"w{worker}-{i}")

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert core().windows.count(user_id=7) == n


def test_concurrent_submissions_see_distinct_counts():
    results: list[int] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        count = record_submission(user_id=9, member=f"m{i}")
        with lock:
            results.append(count)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(50))


def test_record_is_one_round_trip():
    record_submission(user_id=3, member="warm", now=1.0)  # loads the script once
    with count_redis_round_trips() as calls:
        record_submission(user_id=3, member="x", now=2.0)
    assert calls == ["EVALSHA"]


def test_keys_are_namespaced_so_no_user_can_collide_with_the_broker():
    # Under the deployment's hash tag, like every key of the fair queue and the broker's lists:
    # one Redis Cluster slot.
    tag = "{" + settings.PQH_REDIS_PREFIX + "}"
    assert core().keys.window(5) == f"{tag}:win:5"
    broker = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    assert broker.startswith(f"{tag}:")
    record_submission(user_id=5, member="a")
    assert core().redis.exists(core().keys.window(5))
    # Users are keyed by id, never by a name such as "celery" that the broker uses.
    assert not core().redis.exists("celery")


def test_a_refused_submission_can_be_taken_back():
    record_submission(user_id=4, member="kept", now=10.0)
    record_submission(user_id=4, member="refused", now=11.0)
    core().admissions.undo(user_id=4, task_id="refused", idempotency_key="")
    assert core().windows.count(user_id=4, now=12.0) == 1


def test_a_reset_forgets_the_window_in_one_round_trip_and_says_how_many_counted():
    record_submission(user_id=3, member="expired", now=1000.0)
    for i in range(4):
        record_submission(user_id=3, member=f"live{i}", now=1000.0 + T + i)
    record_submission(user_id=4, member="other", now=1000.0 + T)
    with count_redis_round_trips() as calls:
        forgotten = core().windows.reset(user_id=3, now=1000.0 + T + 5)
    assert forgotten == 4
    assert len(calls) == 1
    assert core().windows.count(user_id=3, now=1000.0 + T + 5) == 0
    assert record_submission(user_id=3, member="next", now=1000.0 + T + 6) == 0
    assert core().windows.count(user_id=4, now=1000.0 + T + 5) == 1
    assert core().windows.reset(user_id=99) == 0
