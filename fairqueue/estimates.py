"""When a queued task should start: a pure estimate from its position and recent run times."""


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
