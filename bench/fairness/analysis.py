"""A run's figures from its rows: waits, utilisation, shares over the contention period.

`analyse` computes what every scenario reports (the keys of `modes.<mode>` in the JSON, see
bench/README.md) and adds the scenario's own figures (scenario_figures.py).
"""

from __future__ import annotations

from typing import Any

from bench.harness import percentiles

from .scenario_figures import SCENARIO_EXTRAS, service_gap
from .scenarios import RunConfig
from .timeline import DT, Grid, has_work


def analyse(cfg: RunConfig, out: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run (`out`: the submitter's rows, marks and settings)."""
    import numpy as np

    d, w = cfg.d, cfg.workers
    rows = [r for r in out["rows"] if r["cls"] != "warmup"]
    started = [r for r in rows if r["started"]]
    res: dict[str, Any] = {
        "tasks": len(rows),
        "finished": sum(1 for r in rows if r["finished"]),
        "timed_out": out["timed_out"],
        "settings": out["settings"],
        "worker_log_errors": out["worker_log_errors"],
    }
    if not rows:
        return res
    grid = Grid(rows)
    t0 = grid.t0
    res["elapsed_s"] = round(grid.t1 - t0, 3)
    res["levels"] = {str(k): v for k, v in sorted(count_by(rows, "level").items())}
    res["aged"] = sum(1 for r in rows if r["aged"])

    # Waits per class, in units of d.
    classes = sorted({r["cls"] for r in rows}, key=lambda c: (c != "hog", c))
    waits = {c: [r["started"] - r["submitted"] for r in started if r["cls"] == c] for c in classes}
    res["wait_d"] = {c: percentiles(v, d) for c, v in waits.items()}
    never = [r for r in rows if not r["started"]]
    if never:
        res["never_started"] = len(never)

    # Utilisation: busy slots / W while at least one task waits.
    waiting = grid.waiting(rows)
    running = grid.running(rows)
    queued = waiting > 0
    if queued.any():
        res["utilisation"] = round(
            float(np.minimum(running[queued], w).sum() / (w * queued.sum())), 4
        )
    else:
        res["utilisation"] = None
    res["queued_s"] = round(float(queued.sum() * DT), 3)
    busy = sum((r["finished"] - r["started"]) for r in rows if r["finished"] and r["started"])
    span = grid.t1 - min(r["started"] for r in started) if started else 0
    res["utilisation_span"] = round(busy / (w * span), 4) if span > 0 else None
    done = [r for r in rows if r["finished"] and r["started"]]
    if done:
        res["slot_time_per_task_ms"] = round(
            1000 * float(np.mean([r["finished"] - r["started"] for r in done])), 2
        )
    submit_ms = [r["submit_ms"] for r in rows if r["submit_ms"] is not None]
    if submit_ms:
        res["submit_call_ms"] = percentiles(submit_ms, 1.0)

    # Share of service per class over the contention period (every class has a task waiting).
    if len(cfg.classes) >= 1:
        by_class = {c: [r for r in rows if r["cls"] == c] for c in cfg.classes}
        mask = np.ones(grid.n, dtype=bool)
        for c in cfg.classes:
            mask &= grid.waiting(by_class[c]) > 0
        run_c = {c: grid.running(by_class[c]) for c in cfg.classes}
        total = sum(float(run_c[c][mask].sum()) for c in cfg.classes)
        res["contention_s"] = round(float(mask.sum() * DT), 3)
        if total > 0:
            res["share"] = {c: round(float(run_c[c][mask].sum()) / total, 4) for c in cfg.classes}
        else:
            res["share"] = None
        # The same over time, in bins of 10 d, while anything waits (for the share-over-time view).
        bin_n = max(1, int(round(10 * d / DT)))
        series = []
        for start in range(0, grid.n, bin_n):
            sl = slice(start, start + bin_n)
            tot = sum(float(run_c[c][sl].sum()) for c in cfg.classes)
            if tot > 0 and queued[sl].any():
                series.append(
                    [round(start * DT, 2)]
                    + [round(float(run_c[c][sl].sum()) / tot, 3) for c in cfg.classes]
                )
        res["share_over_time"] = {"bin_s": round(bin_n * DT, 3), "columns": ["t_s", *cfg.classes]}
        res["share_over_time"]["rows"] = series
        # The same share counted in the time spent inside the work callable (what
        # PQH_CHARGE=time charges), without the claim and bookkeeping around it.
        work_c = {c: grid.working(by_class[c]) for c in cfg.classes}
        total_work = sum(float(work_c[c][mask].sum()) for c in cfg.classes)
        if total_work > 0 and all(has_work(r) for r in rows if r["finished"]):
            res["share_work"] = {
                c: round(float(work_c[c][mask].sum()) / total_work, 4) for c in cfg.classes
            }
            res["work_s"] = {c: round(float(work_c[c][mask].sum()) * DT, 3) for c in cfg.classes}
        else:
            res["share_work"] = None
        if cfg.scenario in ("S6", "S6B"):
            res.update(service_gap(cfg, grid, mask, work_c, rows, out["settings"]))

    extra = SCENARIO_EXTRAS[cfg.scenario](cfg, out, rows, res)
    res.update(extra)
    return res


def count_by(rows, key):
    """How many rows have each value of `key`."""
    counts: dict[Any, int] = {}
    for r in rows:
        counts[r[key]] = counts.get(r[key], 0) + 1
    return counts
