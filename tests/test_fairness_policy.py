"""The level policy is pure: counts and weights in, a level out, at every boundary."""

import pytest

from fairqueue.policy import (
    DEFAULT_LEVEL_BOUNDS,
    bucket,
    level_for,
    level_for_usage,
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
