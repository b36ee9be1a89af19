"""The default intensive work: the original project's `limited_f`, a sleep of PQH_TASK_SECONDS."""

import time
from typing import Any

from django.conf import settings


def limited_f(x: Any) -> dict[str, Any]:
    """Work for PQH_TASK_SECONDS, then return when it started, its input and when it finished."""
    init = time.time()
    time.sleep(settings.PQH_TASK_SECONDS)
    return {"init_timestamp": init, "input_x": x, "done_timestamp": time.time()}
