"""The level policy: which priority level a submission gets, and why. Pure: numbers in.

A user's usage in the window (its submissions, or under charge "time" the seconds they were
charged) divided by its weight, against the level bounds: level 0 is the best. Also when a user
who stops now is back at level 0, and the one sentence that says why a task has its level.
"""

from collections.abc import Sequence

from .config import TIME, Config

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


def level_of(config: Config, *, count_before: int, weight: int, usage: float | None = None) -> int:
    """Return the level a submission gets under `config` (0 for everyone with fairness off).

    Under charge "time" the window's `usage` (seconds charged) sets it, else the count.
    """
    if not config.fairness:
        return 0
    if config.charge == TIME:
        return level_for_usage(
            usage=count_before if usage is None else usage,
            weight=weight,
            bounds=config.bounds(TIME),
        )
    return level_for(count_before=count_before, weight=weight, bounds=config.level_bounds)


def charge_unit(charge: str) -> str:
    """Return the unit of a charge's usage: "tasks" (a count) or "seconds" (of service)."""
    return "seconds" if charge == TIME else "tasks"


def usage_per_weight(*, usage: float, weight: int, charge: str) -> float:
    """Return what the policy compares with the bounds: whole tasks per weight (the count
    floored by the weight) under tasks, seconds per weight under time."""
    if charge == TIME:
        return usage / weight
    return weighted_count(int(usage), weight)


def _amount(value: float, charge: str) -> str:
    return f"{value:.1f} s" if charge == TIME else f"{int(value)}"


def priority_reason(
    *,
    level: int,
    charge: str,
    usage: float,
    weight: int,
    bounds: list[float],
    window_seconds: float,
    aged: bool,
    max_wait: float,
    fairness: bool = True,
    team: str = "",
    team_weight: int | None = None,
) -> str:
    """Say in one sentence why a task has its level (and whether aging lifted it), and how its
    level is shared: by its team's weight among teams, then by its weight within the team (or,
    with no `team`, as a team of its own at its weight).

    E.g. "level 2: 7 tasks in the last 6000 s at weight 1 reach the bound 6 (level 0 needs
    fewer than 1)". The verb agrees with what is counted: "1 task reaches", "7 tasks reach",
    and seconds of service are an amount ("0.4 s of service ... reaches").
    """
    if not fairness:
        text = "level 0: the fairness policy is off (PQH_FAIRNESS), so tasks start in arrival order"
    else:
        if charge == TIME:
            what = f"{usage:.1f} s of service charged in the last {window_seconds:g} s"
            per = f"{usage / weight:.1f} s per weight"
            need = f"less than {bounds[0]:.1f} s per weight"
            one = True  # an amount of service: "reaches", "stays"
        else:
            count = int(usage)
            one = count == 1
            what = f"{count} task{'' if one else 's'} in the last {window_seconds:g} s"
            per = f"{weighted_count(count, weight)} per weight"
            need = f"fewer than {int(bounds[0])}"
        said = f"{what} at weight {weight}" + ("" if weight == 1 else f" = {per}")
        if level == 0:
            stay = "stays" if one else "stay"
            text = f"level 0: {said} {stay} below the bound {_amount(bounds[0], charge)} of level 1"
        else:
            reach = "reaches" if one else "reach"
            reached = bounds[min(level, len(bounds)) - 1]
            text = (
                f"level {level}: {said} {reach} the bound {_amount(reached, charge)} "
                f"(level 0 needs {need})"
            )
        text += "; " + sharing_reason(weight=weight, team=team, team_weight=team_weight)
    if aged:
        text += (
            f"; waiting longer than PQH_MAX_WAIT_SECONDS ({max_wait:g} s) lifted it ahead of "
            "every level"
        )
    return text


def sharing_reason(*, weight: int, team: str = "", team_weight: int | None = None) -> str:
    """Say how a task's level is shared, e.g. "team ml (team weight 3) shares its level among
    teams, then member weight 1 within the team", or "no team: shares its level at weight 1"."""
    if not team:
        return f"no team: shares its level at weight {weight}"
    return (
        f"team {team} (team weight {team_weight or 1}) shares its level among teams, "
        f"then member weight {weight} within the team"
    )
