"""fairqueue.stats at its boundaries: the one percentile and the one Jain index of the project."""

import random

import pytest

from fairqueue.stats import jain_index, percentile


def test_a_percentile_of_nothing_is_none():
    assert percentile([], 50) is None
    assert percentile(iter(()), 99) is None


def test_a_percentile_of_one_value_is_that_value_at_every_q():
    for q in (0, 1, 50, 99, 100):
        assert percentile([7.5], q) == 7.5


def test_q_zero_is_the_smallest_value_and_q_hundred_the_largest():
    values = [3.0, -1.0, 10.0, 4.0]
    assert percentile(values, 0) == -1.0
    assert percentile(values, 100) == 10.0


def test_the_median_of_an_even_count_is_the_mean_of_the_two_middle_values():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3], 50) == 2.0


def test_between_two_ranks_the_percentile_is_interpolated_not_the_nearest_rank():
    # rank (5 - 1) * 0.9 = 3.6: 60% of the way from the 4th value (40) to the 5th (50).
    assert percentile([10, 20, 30, 40, 50], 90) == pytest.approx(46.0)
    # The old nearest-rank helper of bench/harness.py gave 50 here.


def test_all_zero_values_have_a_zero_percentile():
    assert percentile([0.0, 0.0, 0.0], 99) == 0.0


def test_a_q_outside_zero_to_hundred_is_refused():
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], -0.5)


def test_the_percentile_is_numpys_default_to_the_last_bit():
    # The fairness benchmark's figures were numpy.percentile's: they must not move.
    np = pytest.importorskip("numpy")
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101, 400, 3000):
        values = [rng.expovariate(3.0) for _ in range(n)]
        for q in (0, 1, 25, 50, 90, 95, 99, 99.9, 100):
            assert percentile(values, q) == float(np.percentile(values, q)), (n, q)


def test_jain_of_nothing_or_of_all_zero_is_none():
    assert jain_index([]) is None
    assert jain_index([0.0, 0.0]) is None


def test_jain_of_one_value_or_of_equal_values_is_one():
    assert jain_index([0.3]) == 1.0
    assert jain_index([2.0, 2.0, 2.0]) == 1.0


def test_jain_is_one_over_n_when_one_value_holds_everything():
    assert jain_index([5.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)


def test_jain_of_shares_two_and_two_thirds_is_point_eight():
    # FIFO at weights 1:3 (equal shares): share / weight = 2 and 2/3.
    assert jain_index([2.0, 2 / 3]) == pytest.approx(0.8)
