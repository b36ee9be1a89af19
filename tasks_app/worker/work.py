"""The default intensive work: the original project's `limited_f`, a sleep of PQH_TASK_SECONDS."""

import time
from typing import Any

from django.conf import settings

from .progress import Progress

# limited_f reports its progress every tenth of its duration, or every second if that is sooner.
PROGRESS_STEPS_MIN = 10


def limited_f(x: Any, *, progress: Progress | None = None) -> dict[str, Any]:
    """Work for PQH_TASK_SECONDS, then return when it started, its input and when it finished.

    While it works it reports its progress (if given a `progress` function).
    """
    init = time.time()
    total = settings.PQH_TASK_SECONDS
    steps = max(PROGRESS_STEPS_MIN, int(total))
    start = time.monotonic()
    for step in range(1, steps + 1):
        # Sleep to a deadline, not for a step, so the reports cost no drift.
        time.sleep(max(0.0, start + total * step / steps - time.monotonic()))
        if progress is not None and step < steps:
            progress(step / steps, f"{total * step / steps:.1f} of {total:g} s")
    return {"init_timestamp": init, "input_x": x, "done_timestamp": time.time()}
