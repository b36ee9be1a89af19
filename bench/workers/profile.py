"""The top items of a py-spy profile of a worker (its raw, collapsed stacks).

py-spy samples the worker's processes (`--subprocesses --idle`: every thread, waiting or not,
so a share is a share of wall-clock time) and writes one line per distinct stack with its
sample count. The pool processes (the slots) and the main process (the consumer) are counted
apart. A function's share is the fraction of that side's samples whose stack holds it
(inclusive), counted once per stack; the top items are the project's and Celery's, kombu's,
Django's, redis-py's and psycopg's functions with the largest shares, leaving out those on
(nearly) every stack (the process's entry points). In a slot, the share outside Celery's
`trace_task` is the time it waited for its next task.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")
_LIBS = (
    "tasks_app",
    "fairqueue",
    "pqh_site",
    "bench",
    "celery",
    "kombu",
    "django",
    "redis",
    "psycopg",
    "billiard",
)


def _name(frame: str) -> str | None:
    match = _FRAME.match(frame.strip())
    if not match:
        return None
    path = match.group("file")
    for lib in _LIBS:
        at = path.find(f"/{lib}/")
        if at >= 0 or path.startswith(f"{lib}/"):
            module = path[at + 1 :] if at >= 0 else path
            return f"{match.group('func')} ({module})"
    return None


def _shares(stacks: list[tuple[list[str], int]], n: int) -> dict:
    counts: Counter[str] = Counter()
    total = sum(samples for _, samples in stacks)
    for frames, samples in stacks:
        for name in {name for name in map(_name, frames) if name}:
            counts[name] += samples
    top = [
        {"function": name, "percent": round(100 * c / total, 1)}
        for name, c in counts.most_common()
        if c / total < 0.9
    ][:n]
    return {"samples": total, "top": top}


# The steps of a slot's time, each the share of the pool's samples whose stack holds a frame
# whose text contains the marker (pqh's steps, then the peer's; a step absent from a system is 0).
STEPS = (
    ("waiting for the next task", "Worker._make_protected_receive"),
    ("running a task (Celery's trace)", "build_tracer.<locals>.trace_task"),
    ("the work", "sleep_for (bench/workload.py"),
    ("claim", "task_claim (tasks_app"),
    ("start notice, pick, publish, confirm", "_release_next (tasks_app"),
    ("  of which the publish (Celery's send_task)", "Celery.send_task"),
    ("finish (end row and stored result)", "task_finish (tasks_app"),
    ("start and finish log lines", "_emit (tasks_app"),
    ("django-celery-results' store_result (main's finish; the peer)", "Backend.store_result"),
    ("opening a PostgreSQL connection", "BaseDatabaseWrapper.connect"),
    ("Celery's Django fixup closing it", "DjangoWorkerFixup._close_database"),
)


def steps(path: Path) -> dict[str, float]:
    """The share (percent) of the pool processes' samples in each of STEPS."""
    counts = dict.fromkeys((label for label, _ in STEPS), 0)
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "Worker.workloop" not in stack:
            continue
        total += int(count)
        for label, marker in STEPS:
            if marker in stack:
                counts[label] += int(count)
    return {label: round(100 * c / total, 1) if total else 0.0 for label, c in counts.items()}


def top_items(path: Path, n: int = 12) -> dict:
    """The pool processes' and the main process's samples and top `n` functions each, by
    inclusive share (percent of that side's samples)."""
    pool: list[tuple[list[str], int]] = []
    main: list[tuple[list[str], int]] = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        # A pool process runs billiard's worker loop; everything else is the main process.
        side = pool if any("Worker.workloop" in f for f in frames) else main
        side.append((frames, int(count)))
    if not pool and not main:
        return {"pool": {"samples": 0, "top": []}, "main": {"samples": 0, "top": []}, "steps": {}}
    return {
        "pool": _shares(pool, n) if pool else {"samples": 0, "top": []},
        "main": _shares(main, n) if main else {"samples": 0, "top": []},
        "steps": steps(path),
    }
