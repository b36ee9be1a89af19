"""When a queued task should start: a pure estimate from its position and recent run times."""


def estimate_start(
    *, position: int, running_since: list[float], mean_run: float, now: float
) -> float:
    """Return when a task with `position` queued tasks ahead of it should start (epoch seconds).

    The slots are the tasks running now: each frees at its start + `mean_run` (or now, if it
    is already overdue); with no task running, one slot is taken to be free now. The tasks
    ahead then take the slots in turn, each for `mean_run`: with S slots, the task at position
    P gets the (P mod S)-th slot to free, after P // S more runs on it. Exact when every run
    takes `mean_run`; it does not know about slots that are idle now or tasks still to come at
    better levels.
    """
    if position < 0 or mean_run < 0:
        raise ValueError("position and mean_run must not be negative")
    frees = sorted(max(now, started + mean_run) for started in running_since) or [now]
    slots = len(frees)
    return frees[position % slots] + (position // slots) * mean_run
