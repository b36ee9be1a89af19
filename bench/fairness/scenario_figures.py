"""The figures particular to each scenario, added to what every run reports (analysis.py).

S1: the newcomers' waits and overtakes; S2: shares against weights; S3: the aging bound; S4:
throughput and slot gaps; S5: submit-to-start latency; S6/S6b: shares of worker time, the
normalised-service gap against the bound of docs/fairness.md, and what the charge recorded.
"""

from __future__ import annotations

import itertools
from typing import Any

from bench.harness import percentiles
from fairqueue.stats import jain_index

from .timeline import DT, has_work, lanes


def extras_s1(cfg, out, rows, res):
    d, w = cfg.d, cfg.workers
    arrive = out["marks"]["newcomers_arrive"]
    newcomers = sorted((r for r in rows if r["cls"] == "newcomer"), key=lambda r: r["i"])
    hogs = [r for r in rows if r["cls"] == "hog"]
    pending = [h for h in hogs if not h["started"] or h["started"] > arrive]
    # A hog task that had not started when a newcomer arrived, yet started before it.
    overtakes = sum(
        1
        for n in newcomers
        for h in hogs
        if n["started"]
        and h["started"]
        and h["started"] > n["submitted"]
        and h["started"] < n["started"]
    )
    return {
        "newcomer_wait_d": [
            round((n["started"] - n["submitted"]) / d, 3) if n["started"] else None
            for n in newcomers
        ],
        # k-th newcomer: the residual of a running task plus (k-1) d / W; at most 1 + (k-1)/W.
        "ideal_newcomer_wait_d": [round(1 + k / w, 3) for k in range(len(newcomers))],
        "hog_waiting_at_arrival": len(pending),
        "fifo_expected_newcomer_wait_d": round(len(pending) / w, 2),
        "hog_overtakes": overtakes,
    }


def extras_s2(cfg, out, rows, res):
    weights = {label: weight for _name, weight, _n, label in cfg.plan["users"]}
    share = res.get("share") or {}
    extra: dict[str, Any] = {"weights": weights}
    if share and all(share.get(c) for c in weights):
        lightest = min(weights, key=lambda c: (weights[c], c))
        extra["share_ratio"] = {c: round(share[c] / share[lightest], 3) for c in weights}
        extra["weight_ratio"] = {c: round(weights[c] / weights[lightest], 3) for c in weights}
        extra["ideal_share"] = {c: round(weights[c] / sum(weights.values()), 4) for c in weights}
        extra["jain_share_per_weight"] = round(
            jain_index([share[c] / weights[c] for c in weights]), 4
        )
    else:
        extra["jain_share_per_weight"] = None
    return extra


def service_gap(cfg, grid, mask, work_c, rows, settings) -> dict[str, Any]:
    """How far apart the users' normalised service got while all were backlogged.

    - `max_gap_s`, `final_gap_s`: each user's normalised service is the seconds its tasks spent
      in the work callable during the contention period (running tasks count as they run),
      divided by its weight; the gap at an instant is the largest minus the smallest (the
      plotted lines), its maximum and its value when the period ends.
    - `pick_gap_s`, `k_seen`, `k_bound`, `bound_s`: the quantity of the bound in
      docs/fairness.md, |S_i/w_i - S_j/w_j| <= K (cmax/w_i + cmax/w_j), where S counts a task's
      whole cost (its measured seconds) when it starts, over any interval of the contention
      period, for every pair of users: `pick_gap_s` is the largest such difference,
      `k_seen` the largest difference divided by the pair's cmax/w_i + cmax/w_j, `cmax_s` the
      largest cost or estimate charged, `k_bound` the documented K under time charging
      (2 + 2R, R = W + PQH_RELEASE_BUFFER - 1 picked and unsettled tasks) and `bound_s` K times
      the largest pair term. Under PQH_CHARGE=tasks the bound is in tasks, not seconds: k_bound
      and bound_s are None there.
    """
    import numpy as np

    weights = {label: weight for _name, weight, _lengths, label in cfg.plan["users"]}
    norm = {c: np.cumsum(np.where(mask, work_c[c], 0)) * DT / weights[c] for c in cfg.classes}
    stack = np.vstack([norm[c] for c in cfg.classes])
    gap = (stack.max(axis=0) - stack.min(axis=0))[mask] if mask.any() else np.zeros(1)
    longest = {
        c: max(
            (r["work_end"] - r["work_start"] for r in rows if r["cls"] == c and has_work(r)),
            default=0.0,
        )
        for c in cfg.classes
    }
    estimates = [r["cost"] for r in rows if r.get("charge") == "time" and r.get("cost")]
    cmax = max([*longest.values(), *estimates])
    # Picked service: a task's whole cost / weight when it starts, if it starts in the period.
    picked = {}
    for c in cfg.classes:
        arr = np.zeros(grid.n)
        for r in rows:
            if r["cls"] == c and has_work(r):
                i = grid.idx(r["started"])
                if mask[i]:
                    arr[i] += (r["work_end"] - r["work_start"]) / weights[c]
        picked[c] = np.cumsum(arr)
    pick_gap, k_seen = 0.0, 0.0
    for a, b in itertools.combinations(cfg.classes, 2):
        diff = (picked[a] - picked[b])[mask] if mask.any() else np.zeros(1)
        g = float(diff.max() - diff.min())  # the worst interval: max minus min of the difference
        pick_gap = max(pick_gap, g)
        k_seen = max(k_seen, g / (cmax / weights[a] + cmax / weights[b]))
    timed = settings.get("PQH_CHARGE") == "time"
    k_bound = 2 + 2 * (cfg.workers + (settings.get("PQH_RELEASE_BUFFER") or 1) - 1)
    light = sorted(weights.values())[:2]
    return {
        "max_gap_s": round(float(gap.max()), 3),
        "final_gap_s": round(float(gap[-1]), 3),
        "longest_task_s": {c: round(v, 3) for c, v in longest.items()},
        "cmax_s": round(cmax, 3),
        "pick_gap_s": round(pick_gap, 3),
        "k_seen": round(k_seen, 3),
        "k_bound": k_bound if timed else None,
        "bound_s": round(k_bound * (cmax / light[0] + cmax / light[1]), 3) if timed else None,
    }


def extras_s6(cfg, out, rows, res):
    """S6/S6b: shares of worker time against the weights, and what the charge recorded."""
    weights = {label: weight for _name, weight, _lengths, label in cfg.plan["users"]}
    extra: dict[str, Any] = {
        "weights": weights,
        "ideal_share": {c: round(weights[c] / sum(weights.values()), 4) for c in weights},
        "tasks_per_user": {label: len(lengths) for _n, _w, lengths, label in cfg.plan["users"]},
        "work_asked_s": {
            label: round(sum(lengths), 3) for _n, _w, lengths, label in cfg.plan["users"]
        },
    }
    for key, share in (("work", res.get("share_work")), ("share", res.get("share"))):
        name = "jain_work_per_weight" if key == "work" else "jain_share_per_weight"
        if share and all(share.get(c) for c in weights):
            extra[name] = round(jain_index([share[c] / weights[c] for c in weights]), 4)
        else:
            extra[name] = None
    extra["charge_check"] = charge_check(rows)
    return extra


def charge_check(rows) -> dict[str, Any]:
    """What the TaskRecord rows say was charged, beside what the work took (time mode).

    `run_seconds` should be the seconds in the work callable of the run that finished: compare
    with the work's own start and end. `cost` is the estimate charged at admission.
    """
    done = [r for r in rows if r["finished"]]
    check: dict[str, Any] = {
        "charge": sorted({str(r.get("charge")) for r in rows}),
        "finished": len(done),
        "run_seconds_missing": sum(1 for r in done if r.get("run_seconds") is None),
    }
    diffs = [
        r["run_seconds"] - (r["work_end"] - r["work_start"])
        for r in done
        if r.get("run_seconds") is not None and has_work(r)
    ]
    if diffs:
        check["run_minus_work_ms"] = {
            "min": round(1000 * min(diffs), 2),
            "max": round(1000 * max(diffs), 2),
            "mean": round(1000 * sum(diffs) / len(diffs), 2),
        }
    per_class: dict[str, Any] = {}
    for c in sorted({r["cls"] for r in rows}):
        mine = [r for r in done if r["cls"] == c]
        costs = [r["cost"] for r in mine if r.get("cost") is not None]
        runs = [r["run_seconds"] for r in mine if r.get("run_seconds") is not None]
        per_class[c] = {
            "work_s": round(sum(r["work_end"] - r["work_start"] for r in mine if has_work(r)), 3),
            "run_seconds_sum": round(sum(runs), 3) if runs else None,
            "cost_mean": round(sum(costs) / len(costs), 4) if costs else None,
            "cost_first_last": [costs[0], costs[-1]] if costs else None,
        }
    check["per_class"] = per_class
    return check


def extras_s3(cfg, out, rows, res):
    d = cfg.d
    hogs = [r for r in rows if r["cls"] == "hog" and r["started"]]
    bound = cfg.plan["bound_s"]  # the policy's PQH_MAX_WAIT_SECONDS, shown beside every mode
    stream = out["marks"]["stream_end"] - out["marks"]["stream_start"]
    hog_max = max((r["started"] - r["submitted"] for r in hogs), default=None)
    return {
        "max_wait_bound_d": round(bound / d, 3),
        "aging": out["settings"]["PQH_FAIRNESS"] and out["settings"]["PQH_MAX_WAIT_SECONDS"] < 1e5,
        "stream_d": round(stream / d, 2),
        "hog_max_wait_d": round(hog_max / d, 3) if hog_max is not None else None,
        # Aged tasks are released oldest first, W at a time: the last of a backlog B that aged
        # together starts about B d / W after the bound.
        "aged_backlog_drain_d": round(cfg.plan["backlog"] / cfg.workers, 2),
        "hog_started_during_stream": sum(
            1 for r in hogs if r["started"] < out["marks"]["stream_end"]
        ),
    }


def extras_s4(cfg, out, rows, res):
    d, w = cfg.d, cfg.workers
    done = [r for r in rows if r["finished"]]
    extra: dict[str, Any] = {"target_utilisation": 0.95}
    if len(done) > 1:
        first = min(r["started"] for r in done)
        last = max(r["finished"] for r in done)
        extra["throughput_per_s"] = round(len(done) / (last - first), 3)
        extra["ideal_throughput_per_s"] = round(w / d, 3)
        # The fraction of slot time spent in the work itself (d per task), not in the overhead.
        extra["throughput_ratio"] = round(len(done) * d / (w * (last - first)), 4)
    # Idle gaps in a slot between one task's end and the next one's start.
    lane_of = lanes(rows)
    per_lane: dict[int, list] = {}
    for r in rows:
        if r["task_id"] in lane_of:
            per_lane.setdefault(lane_of[r["task_id"]], []).append(r)
    gaps = []
    for tasks in per_lane.values():
        tasks.sort(key=lambda r: r["started"])
        gaps += [(b["started"] - a["finished"]) * 1000 for a, b in itertools.pairwise(tasks)]
    if gaps:
        extra["slot_gap_ms"] = percentiles(gaps, 1.0)
    return extra


def extras_s5(cfg, out, rows, res):
    lat = [(r["started"] - r["submitted"]) * 1000 for r in rows if r["started"]]
    return {"latency_ms": percentiles(lat, 1.0), "target_p50_ms": 10}


def extras_s7(cfg, out, rows, res):
    """S7: each user's and team's share of the service before and after team B's reweight.

    The service is the tasks' run time from the rows (finished - started), counted for the
    tasks that started while every user had a task waiting: before the weight change was asked
    for, and after it returned (the few that started in between are left out). Each phase is
    checked against the goal of issue 20: A 0.50 +- 0.03 and each B member 0.125 +- 0.02
    before, A 1 / (1 + w) +- 0.03 after.
    """
    classes = cfg.classes
    marks = out.get("marks", {})
    asked, done = marks.get("reweight_asked"), marks.get("reweight_done")
    w2 = cfg.plan["reweight"]["weight"]
    by_class = {c: [r for r in rows if r["cls"] == c] for c in classes}

    def backlogged(t: float) -> bool:
        return all(
            any(q["submitted"] <= t and (q["started"] is None or q["started"] >= t) for q in rs)
            for rs in by_class.values()
        )

    service = {"before": dict.fromkeys(classes, 0.0), "after": dict.fromkeys(classes, 0.0)}
    tasks = {"before": dict.fromkeys(classes, 0), "after": dict.fromkeys(classes, 0)}
    for r in rows:
        if not (r["started"] and r["finished"]) or asked is None or done is None:
            continue
        phase = "before" if r["started"] < asked else "after" if r["started"] >= done else None
        if phase and backlogged(r["started"]):
            service[phase][r["cls"]] += r["finished"] - r["started"]
            tasks[phase][r["cls"]] += 1
    goal = {
        "before": {c: (0.5, 0.03) if c == "a" else (0.125, 0.02) for c in classes},
        "after": {"a": (round(1 / (1 + w2), 4), 0.03)},
    }
    extra: dict[str, Any] = {"reweight": cfg.plan["reweight"], "phases": {}}
    if asked is not None and done is not None:
        extra["reweight_call_ms"] = round(1000 * (done - asked), 1)
    for phase in ("before", "after"):
        total = sum(service[phase].values())
        share = {c: round(v / total, 4) for c, v in service[phase].items()} if total else None
        met = None
        if share:
            met = all(abs(share[c] - want) <= tol for c, (want, tol) in goal[phase].items())
        extra["phases"][phase] = {
            "share": share,
            "team_share": {"a": share["a"], "b": round(1 - share["a"], 4)} if share else None,
            "tasks": tasks[phase],
            "service_s": {c: round(v, 3) for c, v in service[phase].items()},
            "goal": {c: list(g) for c, g in goal[phase].items()},
            "met": met,
        }
    return extra


SCENARIO_EXTRAS = {
    "S1": extras_s1,
    "S2": extras_s2,
    "S3": extras_s3,
    "S4": extras_s4,
    "S5": extras_s5,
    "S6": extras_s6,
    "S6B": extras_s6,
    "S7": extras_s7,
}
