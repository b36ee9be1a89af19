"""The start estimate is pure: a position, running tasks, recent runs (or none) in; a time out."""

import pytest

from fairqueue.estimates import estimate_start, max_overlap, mean_run, start_estimate

NOW = 1000.0

RUN = 0.6

SLOTS = 2


def test_the_first_task_in_line_starts_when_the_first_slot_frees():
    # Two slots: one frees in 0.4 s, the other in 0.9 s.
    running = [NOW - 0.6, NOW - 0.1]
    assert estimate_start(position=0, running_since=running, mean_run=1.0, now=NOW) == 1000.4
    assert estimate_start(position=1, running_since=running, mean_run=1.0, now=NOW) == 1000.9
    # The third in line takes the first slot again, one run later.
    assert estimate_start(position=2, running_since=running, mean_run=1.0, now=NOW) == 1001.4
    assert estimate_start(position=5, running_since=running, mean_run=1.0, now=NOW) == 1002.9


def test_an_overdue_run_frees_its_slot_now():
    assert estimate_start(position=0, running_since=[NOW - 5], mean_run=1.0, now=NOW) == NOW
    assert estimate_start(position=3, running_since=[NOW - 5], mean_run=1.0, now=NOW) == NOW + 3


def test_with_nothing_running_one_slot_is_free_now():
    assert estimate_start(position=0, running_since=[], mean_run=2.0, now=NOW) == NOW
    assert estimate_start(position=4, running_since=[], mean_run=2.0, now=NOW) == NOW + 8


def test_slots_seen_in_use_but_idle_now_are_free_now():
    # Two slots were used at once recently; one runs now: the next task starts at once.
    assert (
        estimate_start(position=0, running_since=[NOW - 0.5], mean_run=1, now=NOW, slots=2) == NOW
    )
    assert estimate_start(position=1, running_since=[NOW - 0.5], mean_run=1, now=NOW, slots=2) == (
        NOW + 0.5
    )
    assert estimate_start(position=2, running_since=[NOW - 0.5], mean_run=1, now=NOW, slots=2) == (
        NOW + 1
    )


def test_the_slots_seen_are_the_most_runs_at_one_time():
    assert max_overlap([]) == 0
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1  # back to back: one slot
    assert max_overlap([(0, 2), (1, 3), (1.5, 4), (3.5, 5)]) == 3


def test_negative_inputs_are_refused():
    with pytest.raises(ValueError):
        estimate_start(position=-1, running_since=[], mean_run=1.0, now=NOW)


def test_the_run_time_is_the_recent_mean_or_the_configured_one_before_any_run():
    assert mean_run([(0.0, 1.0), (1.0, 4.0)], default=60.0) == 2.0
    assert mean_run([], default=60.0) == 60.0


def test_with_no_history_the_first_submissions_have_an_estimate():
    """A new deployment, two slots both busy (started 10 s and 30 s ago), 60-second tasks by
    PQH_TASK_SECONDS, nothing finished yet: the slots are the two running tasks, which free at
    their start + 60 s; the queued tasks take them in turn."""
    running = [NOW - 10, NOW - 30]
    starts = [
        start_estimate(position=p, running_since=running, runs=[], default_run=60.0, now=NOW)
        for p in range(5)
    ]
    assert starts == [NOW + 30, NOW + 50, NOW + 90, NOW + 110, NOW + 150]


def test_with_no_history_and_nothing_running_one_slot_is_free_now():
    assert start_estimate(position=0, running_since=[], runs=[], default_run=60.0, now=NOW) == NOW
    assert start_estimate(position=2, running_since=[], runs=[], default_run=60.0, now=NOW) == (
        NOW + 120
    )


def test_once_runs_have_finished_their_mean_and_overlap_decide():
    # Two runs of 2 s that overlapped: two slots, though one runs now; the default is unused.
    runs = [(NOW - 5, NOW - 3), (NOW - 4, NOW - 2)]
    running = [NOW - 1]
    got = [
        start_estimate(position=p, running_since=running, runs=runs, default_run=60.0, now=NOW)
        for p in range(3)
    ]
    assert got == [NOW, NOW + 1, NOW + 2]
