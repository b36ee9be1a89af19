"""The sliding window counter on the real Redis: exact, atomic, decaying, namespaced."""

import threading

from django.conf import settings

from fairqueue.testing import count_redis_round_trips
from tasks_app.redis_client import get_redis
from tasks_app.window import (
    window_count,
    window_forget,
    window_key,
    window_record,
    window_reset,
)

T = settings.PQH_WINDOW_SECONDS


def test_count_before_grows_by_one_per_submission():
    seen = [window_record(user_id=1, member=f"t{i}", now=1000.0 + i) for i in range(5)]
    assert seen == [0, 1, 2, 3, 4]
    assert window_count(user_id=1, now=1005.0) == 5


def test_a_submission_stops_counting_exactly_t_seconds_later_whatever_comes_after():
    window_record(user_id=1, member="old", now=1000.0)
    # A busy user keeps submitting; the original reset a TTL here and never decayed.
    for i in range(10):
        window_record(user_id=1, member=f"busy{i}", now=1000.0 + T - 10 + i)
    assert window_count(user_id=1, now=1000.0 + T - 0.5) == 11
    assert window_count(user_id=1, now=1000.0 + T + 0.5) == 10
    assert window_count(user_id=1, now=1000.0 + 2 * T + 100) == 0


def test_concurrent_submissions_by_one_user_are_all_counted():
    n = 200
    barrier = threading.Barrier(8)

    def submit(worker: int) -> None:
        barrier.wait()
        for i in range(n // 8):
            window_record(user_id=7, member=f"w{worker}-{i}")

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert window_count(user_id=7) == n


def test_concurrent_submissions_see_distinct_counts():
    results: list[int] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        count = window_record(user_id=9, member=f"m{i}")
        with lock:
            results.append(count)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(50))


def test_record_is_one_round_trip():
    window_record(user_id=3, member="warm", now=1.0)  # loads the script once
    with count_redis_round_trips() as calls:
        window_record(user_id=3, member="x", now=2.0)
    assert calls == ["EVALSHA"]


def test_keys_are_namespaced_so_no_user_can_collide_with_the_broker():
    # Under the deployment's hash tag, like every key of the fair queue and the broker's lists:
    # one Redis Cluster slot.
    tag = "{" + settings.PQH_REDIS_PREFIX + "}"
    assert window_key(5) == f"{tag}:win:5"
    broker = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    assert broker.startswith(f"{tag}:")
    window_record(user_id=5, member="a")
    assert get_redis().exists(window_key(5))
    # Users are keyed by id, never by a name such as "celery" that the broker uses.
    assert not get_redis().exists("celery")


def test_a_refused_submission_can_be_taken_back():
    window_record(user_id=4, member="kept", now=10.0)
    window_record(user_id=4, member="refused", now=11.0)
    window_forget(user_id=4, member="refused")
    assert window_count(user_id=4, now=12.0) == 1


def test_a_reset_forgets_the_window_in_one_round_trip_and_says_how_many_counted():
    window_record(user_id=3, member="expired", now=1000.0)
    for i in range(4):
        window_record(user_id=3, member=f"live{i}", now=1000.0 + T + i)
    window_record(user_id=4, member="other", now=1000.0 + T)
    with count_redis_round_trips() as calls:
        forgotten = window_reset(user_id=3, now=1000.0 + T + 5)
    assert forgotten == 4
    assert len(calls) == 1
    assert window_count(user_id=3, now=1000.0 + T + 5) == 0
    assert window_record(user_id=3, member="next", now=1000.0 + T + 6) == 0
    assert window_count(user_id=4, now=1000.0 + T + 5) == 1
    assert window_reset(user_id=99) == 0
