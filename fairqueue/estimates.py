"""When a queued task should start: a pure estimate from its position and recent run times.

With no finished run to learn from (a new deployment, or history pruned), the run time is the
configured one (PQH_TASK_SECONDS), so a task has an estimate from the first submission on.
"""


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Return the most intervals (start, end) that were open at one time: slots seen in use."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = open_now = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


def estimate_start(
    *, position: int, running_since: list[float], mean_run: float, now: float, slots: int = 1
) -> float:
    """Return when a task with `position` queued tasks ahead of it should start (epoch seconds).

    Each running task frees its slot at its start + `mean_run` (or now, if it is overdue); the
    slots beyond the running tasks (`slots` is how many the workers have been seen to use) are
    free now. The tasks ahead then take the slots in turn, each for `mean_run`: with S slots,
    the task at position P gets the (P mod S)-th slot to free, after P // S more runs on it.
    Exact when every run takes `mean_run`; it cannot know about tasks still to come at better
    levels.
    """
    if position < 0 or mean_run < 0:
        raise ValueError("position and mean_run must not be negative")
    busy = [max(now, started + mean_run) for started in running_since]
    frees = sorted(busy + [now] * max(0, slots - len(busy))) or [now]
    return frees[position % len(frees)] + (position // len(frees)) * mean_run


def mean_run(runs: list[tuple[float, float]], *, default: float) -> float:
    """Return the mean length of the finished runs (start, end), or `default` if there is none
    (PQH_TASK_SECONDS: how long a task is configured to take)."""
    if not runs:
        return default
    return sum(end - start for start, end in runs) / len(runs)


def start_estimate(
    *,
    position: int,
    running_since: list[float],
    runs: list[tuple[float, float]],
    default_run: float,
    now: float,
) -> float:
    """Return when a task with `position` queued tasks ahead of it should start (epoch seconds),
    from the tasks running now (their start times) and the recent finished runs.

    The run time is the runs' mean, or `default_run` before any has finished. The slots are those
    seen in use: as many as run now, or, if more, the most that ran at one time among the
    recent runs (a slot idle right now still counts). While tasks are queued every live slot is
    busy (a free slot takes a released task within milliseconds), so the running tasks alone
    count the slots when there is no history.
    """
    return estimate_start(
        position=position,
        running_since=running_since,
        mean_run=mean_run(runs, default=default_run),
        now=now,
        slots=max(len(running_since), max_overlap(runs)),
    )
