"""A run's rows on a time grid: tasks waiting, running and inside the work, and slot lanes.

Rows are the submitter's (submitted, started, finished, and the work's own start and end, all
`time.time()`); the analysis and the plots read them through these.
"""

from __future__ import annotations

import math
from typing import Any

DT = 0.001  # the time grid for utilisation and shares: 1 ms


class Grid:
    """Counts over time on a 1 ms grid: tasks waiting (submitted, not started) and running."""

    def __init__(self, rows: list[dict[str, Any]]):
        import numpy as np

        self.np = np
        self.t0 = min(r["submitted"] for r in rows)
        ends = [r["finished"] or r["started"] or r["submitted"] for r in rows]
        self.t1 = max(ends)
        self.n = int(math.ceil((self.t1 - self.t0) / DT)) + 2

    def idx(self, t: float) -> int:
        return min(self.n - 1, max(0, int(round((t - self.t0) / DT))))

    def count(self, intervals: list[tuple[float, float]]):
        arr = self.np.zeros(self.n + 1, dtype=self.np.int32)
        for a, b in intervals:
            i, j = self.idx(a), self.idx(b)
            if j > i:
                arr[i] += 1
                arr[j] -= 1
        return self.np.cumsum(arr)[: self.n]

    def waiting(self, rows):
        return self.count([(r["submitted"], r["started"] or self.t1) for r in rows])

    def running(self, rows):
        return self.count([(r["started"], r["finished"] or self.t1) for r in rows if r["started"]])

    def working(self, rows):
        """Tasks inside the work callable (its own start and end, from the stored result)."""
        return self.count([(r["work_start"], r["work_end"]) for r in rows if has_work(r)])


def has_work(r: dict[str, Any]) -> bool:
    return r.get("work_start") is not None and r.get("work_end") is not None


def lanes(rows: list[dict[str, Any]], eps: float = 0.002) -> dict[str, int]:
    """Give every started task a slot lane, as a reconstruction: TaskRecord names the worker,
    not its pool process. A slot runs one task at a time; a task goes to the slot that freed
    last before it started (the process that just finished is the one that takes it)."""
    ends: list[float] = []
    out: dict[str, int] = {}
    for r in sorted((r for r in rows if r["started"]), key=lambda r: r["started"]):
        end = r["finished"] or r["started"]
        free = [lane for lane, lane_end in enumerate(ends) if lane_end <= r["started"] + eps]
        if free:
            lane = max(free, key=lambda lane: ends[lane])
            ends[lane] = end
        else:
            ends.append(end)
            lane = len(ends) - 1
        out[r["task_id"]] = lane
    return out
