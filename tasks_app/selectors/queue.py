"""The queue as operators see it: tasks per level now, and every user with a live window."""

import time
from typing import Any

from django.conf import settings
from django.db.models import Count

from fairqueue.policy import charge_unit
from pqh_site.core import core
from users_app.selectors import user_windows

from ..models import TaskRecord


def queue_stats(*, now: float | None = None) -> dict[str, Any]:
    """Return, per level, the queued tasks, and per user with a live window: its count, usage
    (the count, or seconds charged), weight, team and team weight (None: no team), next level
    and when it falls back to level 0."""
    now = time.time() if now is None else now
    the_core = core()
    per_level = dict(
        TaskRecord.objects.waiting()
        .values_list("level")
        .annotate(n=Count("pk"))
        .values_list("level", "n")
    )
    in_broker = the_core.queue.broker_lengths()
    levels = [
        {"level": level, "queued": per_level.get(level, 0), "in_broker": in_broker[level]}
        for level in range(settings.PQH_LEVELS)
    ]
    rows = [
        {
            "user": row.username,
            "count": row.count,
            "usage": row.usage,
            "weight": row.weight,
            "team": row.team,
            "team_weight": row.team_weight,
            "usage_per_weight": row.usage_per_weight,
            "next_level": row.next_level,
            "level0_at": None
            if row.level0_at is None
            else row.level0_at.isoformat().replace("+00:00", "Z"),
        }
        for row in sorted(user_windows(now=now), key=lambda row: row.username)
    ]
    return {
        "charge": settings.PQH_CHARGE,
        "unit": charge_unit(settings.PQH_CHARGE),
        "bounds": the_core.config.bounds(),
        "levels": levels,
        "waiting_in_fair_queue": the_core.queue.waiting_count(),
        "users": rows,
        "window_seconds": settings.PQH_WINDOW_SECONDS,
    }
