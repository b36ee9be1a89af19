"""Where a task's waits and events are served: absolute URLs on the wait server (PQH_WAIT_URL),
which answers, the web server's submission and detail carry them."""

from django.conf import settings


def wait_url(path: str) -> str:
    """`path` (a task's /result/<id> or /api/tasks/<id>/) on the wait server, waiting as long as
    a wait may (PQH_WAIT_MAX_SECONDS)."""
    return f"{settings.PQH_WAIT_URL}{path}?wait={settings.PQH_WAIT_MAX_SECONDS:g}"


def events_url(task_id) -> str:
    """The task's Server-Sent Events on the wait server."""
    return f"{settings.PQH_WAIT_URL}/api/tasks/{task_id}/events"
