"""The top items of a py-spy profile of a worker (its raw, collapsed stacks).

py-spy samples the worker's processes (`--subprocesses`; only threads that are running, not
idle ones) and writes one line per distinct stack with its sample count. A function's share is
the fraction of samples whose stack holds it (inclusive), counted once per stack; the top items
are the project's and Celery's, kombu's, Django's, redis-py's and psycopg's functions with the
largest shares, leaving out those on (nearly) every stack (the process's entry points).
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


def top_items(path: Path, n: int = 15) -> dict:
    """Total samples and the top `n` functions by inclusive share (percent of samples)."""
    counts: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {"samples": 0, "top": []}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        names = {name for name in map(_name, stack.split(";")) if name}
        for name in names:
            counts[name] += samples
    if not total:
        return {"samples": 0, "top": []}
    top = [
        {"function": name, "percent": round(100 * c / total, 1)}
        for name, c in counts.most_common()
        if c / total < 0.9
    ][:n]
    return {"samples": total, "top": top}
