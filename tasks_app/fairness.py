"""The fairness policy: which priority level a submission gets. Pure: numbers in, a level out."""

from collections.abc import Sequence

# The original project's buckets: 0 -> 0; 1-5 -> 1; 6-15 -> 2; 16-25 -> 3; 26-35 -> 4; 36+ -> 5.
# Each bound is the smallest weighted count that reaches the next level.
DEFAULT_LEVEL_BOUNDS: tuple[int, ...] = (1, 6, 16, 26, 36)


def weighted_count(count_before: int, weight: int) -> int:
    """Return the count the policy sees: recent submissions divided (floor) by the weight."""
    if count_before < 0:
        raise ValueError(f"count must not be negative, got {count_before}")
    if weight < 1:
        raise ValueError(f"weight must be at least 1, got {weight}")
    return count_before // weight


def bucket(value: int, bounds: Sequence[int] = DEFAULT_LEVEL_BOUNDS) -> int:
    """Return the level of a weighted count: the number of bounds it has reached."""
    level = 0
    for bound in bounds:
        if value < bound:
            break
        level += 1
    return level


def level_for(
    *, count_before: int, weight: int, bounds: Sequence[int] = DEFAULT_LEVEL_BOUNDS
) -> int:
    """Return the level (0 best) of a submission made after `count_before` others in the window."""
    return bucket(weighted_count(count_before, weight), bounds)


def level_for_usage(*, usage: float, weight: int, bounds: Sequence[float]) -> int:
    """Return the level under PQH_CHARGE=time: `usage` seconds charged in the window, per weight.

    A level's bound is reached when usage / weight is at least the bound (seconds of service
    per unit of weight); with every task charged 1 this is level_for with the count's bounds,
    except that the count is divided exactly rather than floored.
    """
    if usage < 0:
        raise ValueError(f"usage must not be negative, got {usage}")
    if weight < 1:
        raise ValueError(f"weight must be at least 1, got {weight}")
    level = 0
    per_weight = usage / weight
    for bound in bounds:
        # Sums of float charges round: six charges of 0.2 s add up to 1.2, under the bound
        # 6 x 0.2 = 1.2000000000000002. A bound within a billionth counts as reached, so tasks
        # charged exactly PQH_TASK_SECONDS get the levels that counting gives.
        if per_weight < bound * (1 - 1e-9):
            break
        level += 1
    return level


def level0_at(
    *,
    entries: Sequence[tuple[float, float]],
    weight: int,
    bounds: Sequence[float],
    window_seconds: float,
    charge: str,
    now: float,
) -> float | None:
    """Return when a user who stops submitting now falls back to level 0, or None if already.

    `entries` are the user's submissions still in the window as (submit time, charge): charge
    1 under PQH_CHARGE=tasks, seconds under time. Each stops counting at its submit time +
    `window_seconds` (the window drops an entry once now - window_seconds reaches its time), so
    the answer is one of those instants: the first at which what is left gives level 0, that is
    fewer than bounds[0] tasks per weight (the count floored by the weight, as level_for) under
    tasks, or less than bounds[0] seconds per weight (as level_for_usage) under time. Entries
    that have already expired at `now` are ignored. Pure: numbers in, a time out.
    """
    if weight < 1:
        raise ValueError(f"weight must be at least 1, got {weight}")
    if charge not in ("tasks", "time"):
        raise ValueError(f"charge must be 'tasks' or 'time', got {charge!r}")
    if not bounds:
        return None
    ends = sorted(
        (submitted + window_seconds, cost)
        for submitted, cost in entries
        if submitted + window_seconds > now
    )

    # What is still counting once the first i entries have stopped, summed from the newest
    # backwards (additions only, no drift from subtracting).
    left = [0.0] * (len(ends) + 1)
    for i in range(len(ends) - 1, -1, -1):
        left[i] = left[i + 1] + (1.0 if charge == "tasks" else max(ends[i][1], 0.0))
    for i in range(len(ends) + 1):
        if charge == "tasks":
            level0 = weighted_count(len(ends) - i, weight) < bounds[0]
        else:
            level0 = level_for_usage(usage=left[i], weight=weight, bounds=bounds[:1]) == 0
        if level0:
            return None if i == 0 else ends[i - 1][0]
    return None  # unreachable: with nothing left the user is at level 0
