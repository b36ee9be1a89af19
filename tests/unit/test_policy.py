"""The level policy is pure: counts and weights in, a level out, at every boundary."""

import pytest

from fairqueue.policy import (
    DEFAULT_LEVEL_BOUNDS,
    bucket,
    level0_at,
    level_for,
    level_for_usage,
    priority_reason,
    sharing_reason,
    weighted_count,
)


@pytest.mark.parametrize(
    ("count", "level"),
    [
        (0, 0),
        (1, 1),
        (5, 1),
        (6, 2),
        (15, 2),
        (16, 3),
        (25, 3),
        (26, 4),
        (35, 4),
        (36, 5),
        (10_000, 5),
    ],
)
def test_original_buckets_at_every_boundary(count, level):
    assert level_for(count_before=count, weight=1) == level


def test_weight_six_with_five_recent_submissions_keeps_level_zero():
    # The original README's example: 5 // 6 == 0.
    assert level_for(count_before=5, weight=6) == 0
    assert level_for(count_before=6, weight=6) == 1


@pytest.mark.parametrize(
    ("count", "weight", "level"),
    [
        (11, 2, 1),
        (12, 2, 2),
        (31, 2, 2),
        (32, 2, 3),
        (71, 2, 4),
        (72, 2, 5),
        (215, 6, 4),
        (216, 6, 5),
    ],
)
def test_weight_divides_the_count_before_bucketing(count, weight, level):
    assert level_for(count_before=count, weight=weight) == level


def test_hog_sequence_over_forty_submissions():
    weight_one = [level_for(count_before=n, weight=1) for n in range(40)]
    assert weight_one == [0] + [1] * 5 + [2] * 10 + [3] * 10 + [4] * 10 + [5] * 4
    weight_six = [level_for(count_before=n, weight=6) for n in range(40)]
    assert weight_six == [0] * 6 + [1] * 30 + [2] * 4


def test_custom_bounds():
    assert bucket(0, (2, 4)) == 0
    assert bucket(2, (2, 4)) == 1
    assert bucket(4, (2, 4)) == 2
    assert bucket(99, (2, 4)) == 2


def test_default_bounds_are_the_originals():
    assert DEFAULT_LEVEL_BOUNDS == (1, 6, 16, 26, 36)


@pytest.mark.parametrize(("count", "weight"), [(-1, 1), (0, 0), (3, -2)])
def test_invalid_inputs_are_refused(count, weight):
    with pytest.raises(ValueError):
        weighted_count(count, weight)


@pytest.mark.parametrize("seconds", [0.2, 0.1, 60.0, 1 / 3, 0.7])
@pytest.mark.parametrize("weight", [1, 2, 3])
def test_time_charges_of_equal_length_give_the_levels_counting_gives(seconds, weight):
    # The float sum of n charges of `seconds` may fall a hair under n x seconds (six of 0.2 s
    # add up to 1.2, the bound 6 x 0.2 is 1.2000000000000002): the levels must still agree.
    bounds = [b * seconds for b in DEFAULT_LEVEL_BOUNDS]
    usage = 0.0
    for count in range(60):
        by_time = level_for_usage(usage=usage, weight=weight, bounds=bounds)
        assert by_time == level_for(count_before=count, weight=weight), (count, usage)
        usage += seconds


def test_time_levels_read_seconds_per_weight_against_the_bounds():
    bounds = [60.0, 360.0, 960.0, 1560.0, 2160.0]
    assert level_for_usage(usage=0.0, weight=1, bounds=bounds) == 0
    assert level_for_usage(usage=59.9, weight=1, bounds=bounds) == 0
    assert level_for_usage(usage=60.0, weight=1, bounds=bounds) == 1
    assert level_for_usage(usage=719.0, weight=2, bounds=bounds) == 1  # 359.5 s per weight
    assert level_for_usage(usage=720.0, weight=2, bounds=bounds) == 2
    assert level_for_usage(usage=1e9, weight=1, bounds=bounds) == 5
    with pytest.raises(ValueError):
        level_for_usage(usage=-1.0, weight=1, bounds=bounds)
    with pytest.raises(ValueError):
        level_for_usage(usage=1.0, weight=0, bounds=bounds)


# --- when a user is back at level 0, and why a task has its level ---------------------------


def at(entries, *, weight=1, bounds=(1, 6), charge="tasks", now=0.0, window=100.0):
    return level0_at(
        entries=entries,
        weight=weight,
        bounds=list(bounds),
        window_seconds=window,
        charge=charge,
        now=now,
    )


def test_level0_at_is_none_with_an_empty_window_or_below_the_first_bound():
    assert at([]) is None
    assert at([], charge="time", bounds=(10.0,)) is None
    assert at([(0.0, 1.0)], weight=2) is None  # 1 // 2 = 0 < 1
    assert at([(0.0, 9.99)], charge="time", bounds=(10.0,)) is None


def test_level0_at_under_tasks_waits_for_enough_submissions_to_leave():
    assert at([(10.0, 1.0)]) == 110.0  # one task: level 1 until it leaves at 10 + T
    assert at([(30.0, 1.0), (10.0, 1.0), (20.0, 1.0)]) == 130.0  # every one must leave
    # Weight 2: 3 // 2 = 1 reaches the bound 1; 1 // 2 = 0 does not, once two have left.
    assert at([(10.0, 1.0), (20.0, 1.0), (30.0, 1.0)], weight=2) == 120.0
    # A larger first bound: fewer than 3 left is enough.
    assert at([(t, 1.0) for t in (1.0, 2.0, 3.0, 4.0)], bounds=(3, 6)) == 102.0


def test_level0_at_under_time_sums_the_seconds_left_per_weight():
    entries = [(0.0, 30.0), (10.0, 20.0), (20.0, 5.0)]
    assert at(entries, charge="time", bounds=(10.0,), now=50.0) == 110.0  # 5 s left < 10
    assert at(entries, charge="time", bounds=(30.0,), now=50.0) == 100.0  # 25 s left < 30
    # At exactly the bound the user is not at level 0 yet: usage / weight must be below it.
    assert at([(0.0, 5.0), (1.0, 10.0)], charge="time", bounds=(10.0,)) == 101.0
    assert at([(0.0, 30.0), (5.0, 15.0)], weight=2, charge="time", bounds=(10.0,)) == 100.0
    # A charge settled to zero counts for nothing.
    assert at([(0.0, 0.0), (1.0, 0.0)], charge="time", bounds=(0.1,)) is None


def test_level0_at_ignores_entries_that_have_already_left_the_window():
    # Submitted at 0 with a 100 s window: it stops counting at 100, the window's own boundary.
    assert at([(0.0, 1.0)], now=99.999) == 100.0
    assert at([(0.0, 1.0)], now=100.0) is None
    assert at([(0.0, 1.0), (50.0, 1.0)], now=100.0) == 150.0


def test_level0_at_leaves_at_the_same_instant_together():
    assert at([(5.0, 1.0), (5.0, 1.0), (5.0, 1.0)], weight=2) == 105.0
    assert at([(5.0, 4.0), (5.0, 4.0)], charge="time", bounds=(1.0,)) == 105.0


def test_level0_at_refuses_a_bad_weight_or_charge():
    with pytest.raises(ValueError, match="weight"):
        at([(0.0, 1.0)], weight=0)
    with pytest.raises(ValueError, match="charge"):
        at([(0.0, 1.0)], charge="money")


REASON = {"window_seconds": 6000, "max_wait": 600.0, "bounds": [1, 6, 16, 26, 36]}
SECONDS = [60.0, 120.0, 180.0]


@pytest.mark.parametrize(
    ("level", "charge", "usage", "weight", "bounds", "sentence"),
    [
        # tasks, level 0: none, and one (at weight 1 the level would be 1; at weight 2 it is 0).
        (0, "tasks", 0, 1, None, "level 0: 0 tasks in the last 6000 s at weight 1 stay below the bound 1 of level 1"),
        (0, "tasks", 1, 2, None, "level 0: 1 task in the last 6000 s at weight 2 = 0 per weight stays below the bound 1 of level 1"),
        (0, "tasks", 5, 6, None, "level 0: 5 tasks in the last 6000 s at weight 6 = 0 per weight stay below the bound 1 of level 1"),
        # tasks, above level 0: one task, many, and many at a weight.
        (1, "tasks", 1, 1, None, "level 1: 1 task in the last 6000 s at weight 1 reaches the bound 1 (level 0 needs fewer than 1)"),
        (2, "tasks", 7, 1, None, "level 2: 7 tasks in the last 6000 s at weight 1 reach the bound 6 (level 0 needs fewer than 1)"),
        (1, "tasks", 3, 2, None, "level 1: 3 tasks in the last 6000 s at weight 2 = 1 per weight reach the bound 1 (level 0 needs fewer than 1)"),
        # time: an amount of service, whatever the number.
        (0, "time", 0.0, 1, SECONDS, "level 0: 0.0 s of service charged in the last 6000 s at weight 1 stays below the bound 60.0 s of level 1"),
        (0, "time", 100.0, 2, SECONDS, "level 0: 100.0 s of service charged in the last 6000 s at weight 2 = 50.0 s per weight stays below the bound 60.0 s of level 1"),
        (1, "time", 60.0, 1, SECONDS, "level 1: 60.0 s of service charged in the last 6000 s at weight 1 reaches the bound 60.0 s (level 0 needs less than 60.0 s per weight)"),
        (3, "time", 412.0, 2, SECONDS, "level 3: 412.0 s of service charged in the last 6000 s at weight 2 = 206.0 s per weight reaches the bound 180.0 s (level 0 needs less than 60.0 s per weight)"),
    ],
)  # fmt: skip
def test_the_reason_says_what_set_the_level_in_the_users_words(
    level, charge, usage, weight, bounds, sentence
):
    common = {**REASON, "bounds": bounds or REASON["bounds"]}
    said = priority_reason(
        level=level, charge=charge, usage=usage, weight=weight, aged=False, **common
    )
    shared = sentence + f"; no team: shares its level at weight {weight}"
    assert said == shared
    aged = priority_reason(
        level=level, charge=charge, usage=usage, weight=weight, aged=True, **common
    )
    assert aged == shared + (
        "; waiting longer than PQH_MAX_WAIT_SECONDS (600 s) lifted it ahead of every level"
    )


@pytest.mark.parametrize("aged", [False, True])
def test_the_reason_with_fairness_off_says_so(aged):
    off = priority_reason(
        level=0, charge="tasks", usage=9, weight=1, aged=aged, fairness=False, **REASON
    )
    assert off.startswith(
        "level 0: the fairness policy is off (PQH_FAIRNESS), so tasks start in arrival order"
    )
    assert off.endswith("lifted it ahead of every level") == aged


def test_the_reason_names_the_team_its_weight_and_the_member_weight():
    said = priority_reason(
        level=2, charge="tasks", usage=7, weight=2, aged=False, team="ml", team_weight=3, **REASON
    )
    assert said == (
        "level 2: 7 tasks in the last 6000 s at weight 2 = 3 per weight reach the bound 6 "
        "(level 0 needs fewer than 1); team ml (team weight 3) shares its level among teams, "
        "then member weight 2 within the team"
    )
    assert sharing_reason(weight=4) == "no team: shares its level at weight 4"
    assert sharing_reason(weight=1, team="a.b", team_weight=None).startswith(
        "team a.b (team weight 1)"
    )
    # With fairness off nothing is shared by weight: no team clause.
    off = priority_reason(
        level=0, charge="tasks", usage=1, weight=1, aged=False, fairness=False, team="ml",
        team_weight=3, **REASON,
    )  # fmt: skip
    assert "team" not in off.replace("PQH_FAIRNESS", "")
