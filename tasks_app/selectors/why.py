"""Why a task waits where it does: its level, the usage that set it, its place, in words."""

from typing import Any

from django.conf import settings

from fairqueue.policy import charge_unit, priority_reason, usage_per_weight
from fairqueue.queue import Place
from pqh_site.core import core

from ..models import TaskRecord


def shown_seconds(value: float) -> float:
    """Round seconds as the API shows them: to the millisecond. The history keeps them exact
    (a run's 60.00085645299998 s is shown as 60.001)."""
    return round(value, 3)


def charge_bounds(charge: str) -> list[float]:
    """Return the level bounds in the unit of `charge` (PQH_LEVEL_BOUNDS[_SECONDS])."""
    return core().config.bounds(charge)


def task_priority(
    record: TaskRecord,
    *,
    place: Place | None,
    estimated_start_at: str | None = None,
) -> dict[str, Any]:
    """Return why a task waits (the detail's "priority"): its level and the window usage that
    set it against the bounds, the weight, its team (recorded at submission) and the team's weight,
    its cost, whether aging lifted it, its place.

    No I/O: the record and its `place` (task_place: read once, with the position) say it all.
    Seconds (under time: usage, bounds, cost; run_seconds) are shown to the millisecond.
    """
    charge = record.charge if record.charge in ("tasks", "time") else "tasks"
    # The count under tasks: usage_before equals it, and rows older than it only have the count.
    usage = float(record.usage_before) if charge == "time" else int(record.count_before)
    weight = max(int(record.weight), 1)
    bounds = charge_bounds(charge)
    aged = place.aged if place is not None else bool(record.aged)
    return {
        "level": record.level,
        "charge": charge,
        "usage_before": shown_seconds(usage),
        "unit": charge_unit(charge),
        "weight": weight,
        "team": record.team or None,
        "team_weight": (record.team_weight or 1) if record.team else None,
        "member_weight": weight,
        "usage_per_weight": shown_seconds(
            usage_per_weight(usage=usage, weight=weight, charge=charge)
        ),
        "bounds": [shown_seconds(bound) for bound in bounds],
        "cost": shown_seconds(float(record.cost)),
        "run_seconds": None if record.run_seconds is None else shown_seconds(record.run_seconds),
        "aged": aged,
        "position": None if place is None else place.position,
        "estimated_start_at": estimated_start_at,
        "reason": priority_reason(
            level=record.level,
            charge=charge,
            usage=usage,
            weight=weight,
            bounds=bounds,
            window_seconds=settings.PQH_WINDOW_SECONDS,
            aged=aged,
            max_wait=settings.PQH_MAX_WAIT_SECONDS,
            fairness=settings.PQH_FAIRNESS,
            team=record.team,
            team_weight=record.team_weight,
        ),
    }
