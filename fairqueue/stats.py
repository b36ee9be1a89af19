"""The project's two summary statistics: a percentile and Jain's fairness index. Pure, no I/O.

Every figure of the benchmarks and the fairness report goes through these two, so that a p99 or a
Jain index means the same thing wherever it is printed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """Return the `q`th percentile (0-100) of `values`, by linear interpolation; None if empty.

    The definition is NumPy's default (`numpy.percentile(values, q)`, method "linear", type 7 of
    Hyndman and Fan) and PostgreSQL's `percentile_cont(q / 100)`: sort the n values, take the
    point at rank h = (n - 1) * q / 100 and interpolate between the two values around it. So
    q = 0 is the smallest value, q = 100 the largest, q = 50 the median (the mean of the two
    middle values when n is even). The arithmetic follows NumPy's step for step, so the result
    is the same float, not merely a close one.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * (q / 100)
    if rank >= len(ordered) - 1:
        return float(ordered[-1])
    below = math.floor(rank)
    weight = rank - below
    low, high = float(ordered[below]), float(ordered[below + 1])
    step = high - low
    # NumPy's lerp: from the nearer end, which keeps the result within [low, high].
    return high - step * (1 - weight) if weight >= 0.5 else low + step * weight


def jain_index(values: Iterable[float]) -> float | None:
    """Return Jain's fairness index (Σx)² / (n·Σx²) of `values`; None if empty or all zero.

    1.0 when every value is the same, 1/n when one value holds everything. Over share ÷ weight
    of the users, 1.0 means shares exactly proportional to the weights.
    """
    xs = [float(v) for v in values]
    squares = sum(x * x for x in xs)
    if not xs or squares == 0:
        return None
    return sum(xs) ** 2 / (len(xs) * squares)
