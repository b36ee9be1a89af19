"""The API benchmark's figures: a cell's medians over its rounds, a profile's shares by part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairqueue.stats import percentile


def summarise(cells: list[dict]) -> dict:
    """Median of the rounds of one cell, plus every round.

    A round in which the server answered nothing (wrk hung, or no request completed) is a
    stall: counted, and left out of the medians unless every round stalled.
    """
    rounds = cells
    answered = [c for c in cells if c.get("requests")]
    cells = answered or cells
    return {
        "rps": round(percentile((c["rps"] for c in cells), 50), 1),
        "p50_ms": round(percentile((c["p50_ms"] for c in cells), 50), 2),
        "p99_ms": round(percentile((c["p99_ms"] for c in cells), 50), 2),
        "cpu_ms_per_request": round(percentile((c["cpu_ms_per_request"] for c in cells), 50), 3)
        if all(c.get("cpu_ms_per_request") for c in cells)
        else None,
        "non_2xx": sum(c["non_2xx"] for c in cells),
        "socket_errors": sum(c["socket_errors"] for c in cells),
        "stalled_rounds": len(rounds) - len(answered),
        "rounds": rounds,
    }


PROFILE_PARTS = [
    ("the whole Django request", "__call__ (django/core/handlers/wsgi.py)"),
    ("DRF authentication", "perform_authentication (rest_framework/views.py)"),
    ("DRF request rates (throttles)", "check_throttles (rest_framework/views.py)"),
    ("task_submit", "task_submit (tasks_app/services/submission.py)"),
    ("admission script (Redis)", "admit (fairqueue/admission.py)"),
    ("fair-queue script (Redis)", "add (fairqueue/queue.py)"),
    (
        "INSERT of the task row",
        ("_insert_row (tasks_app/services/submission.py)", "save_base (django/db/models/base.py)"),
    ),
    (
        "task lookup",
        (
            "task_get_for_user (tasks_app/selectors/tasks.py)",
            "task_poll_for_user (tasks_app/selectors",
        ),
    ),
    ("queue position (Redis)", "task_place (tasks_app/selectors/places.py)"),
    ("start estimate (1 SQL)", "task_start_estimate (tasks_app/selectors/places.py)"),
    ("serializer .data", "data (rest_framework/serializers.py)"),
    ("the submission's log line and count", "event_submitted (tasks_app/ops/events.py)"),
    ("releasing picked tasks", "task_release (tasks_app/services/publishing.py)"),
    ("the peer: .delay() (Celery, kombu)", "apply_async (celery/app/task.py)"),
    ("the peer: AsyncResult's state (1 SQL)", "state (celery/result.py)"),
    ("response rendering", "rendered_content (rest_framework/response.py)"),
    ("connection health check", "close_if_health_check_failed (django/db/backends/base/base.py)"),
    ("close_old_connections signals", "close_old_connections (django/db/__init__.py)"),
    ("psycopg (all SQL)", "(psycopg/"),
    ("redis-py (all Redis)", "(redis/"),
    ("gunicorn access log", "access (gunicorn/glogging.py)"),
    ("honcho relaying output", "(honcho/"),
]


def profile_parts(raw: Path) -> dict[str, Any]:
    """Shares of busy samples per named part and per package of the innermost frame."""
    total = 0
    parts = dict.fromkeys((label for label, _ in PROFILE_PARTS), 0)
    packages: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        for label, frames in PROFILE_PARTS:
            if any(frame in stack for frame in ([frames] if isinstance(frames, str) else frames)):
                parts[label] += n
        leaf = stack.rsplit(";", 1)[-1]
        where = leaf[leaf.find("(") + 1 : leaf.rfind(")")] if "(" in leaf else leaf
        package = where.split("/")[0] if "/" in where else where
        packages[package] = packages.get(package, 0) + n
    share = {k: round(100 * v / total, 1) for k, v in parts.items()} if total else {}
    top = sorted(packages.items(), key=lambda kv: -kv[1])[:12]
    return {
        "samples": total,
        "parts_pct": share,
        "self_by_package_pct": {k: round(100 * v / total, 1) for k, v in top} if total else {},
    }
