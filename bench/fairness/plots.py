"""The fairness benchmark's PNGs: a timeline per scenario and W, the normalised service of S6/S6b.

Timelines: one panel per mode, each task a bar in the slot lane that ran it, coloured by user,
aged tasks hatched. Normalised service: one panel per charge, each user's cumulative work
seconds / weight over time, the contention period shaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .scenarios import TITLES, RunConfig
from .timeline import DT, Grid, has_work, lanes

MODE_LABELS = {
    "fifo": "FIFO baseline (PQH_FAIRNESS=0)",
    "policy-tasks": "fairness policy, PQH_CHARGE=tasks",
    "policy-time": "fairness policy, PQH_CHARGE=time",
    "strict-tasks": "policy without aging, PQH_CHARGE=tasks",
    "strict-time": "policy without aging, PQH_CHARGE=time",
}
# Variables the benchmark sets or clears for the processes it starts, so nothing leaks in from


def plot(group: list[tuple[RunConfig, dict[str, Any], dict[str, Any]]], path: Path) -> None:
    """One panel per mode: which user's task ran in which slot lane, over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    cfg0 = group[0][0]
    w, d = cfg0.workers, cfg0.d
    users = []
    for _cfg, out, _res in group:
        for r in out["rows"]:
            if r["user"] not in users and r["cls"] != "warmup":
                users.append(r["user"])
    special = {"bench_hog": "#d62728"}
    palette = [plt.get_cmap("tab10")(i) for i in (0, 2, 1, 4, 5, 6, 8, 9, 7)]
    many = len(users) > 10
    # tab20 without its two reds, which stay the hog's.
    many_palette = [plt.get_cmap("tab20")(i) for i in range(20) if i not in (6, 7)]
    colour = {}
    k = 0
    for u in users:
        if u in special:
            colour[u] = special[u]
        else:
            colour[u] = palette[k % len(palette)] if not many else many_palette[k % 18]
            k += 1
    fig, axes = plt.subplots(
        len(group), 1, figsize=(13, 1.3 + len(group) * (0.9 + 0.45 * w)), sharex=True, squeeze=False
    )
    for ax, (cfg, out, res) in zip(axes[:, 0], group, strict=True):
        rows = [r for r in out["rows"] if r["cls"] != "warmup"]
        if not rows:
            continue
        t0 = min(r["submitted"] for r in rows)
        lane_of = lanes(rows)
        n_lanes = max([w, *[v + 1 for v in lane_of.values()]])
        for r in rows:
            if r["task_id"] not in lane_of:
                continue
            lane = lane_of[r["task_id"]]
            start = r["started"] - t0
            length = (r["finished"] or r["started"] + d) - r["started"]
            ax.broken_barh(
                [(start, length)],
                (lane + 0.1, 0.8),
                facecolors=colour[r["user"]],
                edgecolors="black" if r["aged"] else "white",
                linewidth=1.2 if r["aged"] else 0.4,
                hatch="//" if r["aged"] else None,
            )
        for name, t in out["marks"].items():
            if name in ("newcomers_arrive", "stream_start", "stream_end"):
                ax.axvline(t - t0, color="black", linestyle="--", linewidth=0.8)
                ax.text(t - t0, n_lanes + 0.05, name.replace("_", " "), fontsize=7, va="bottom")
        ax.set_ylim(0, n_lanes + 0.45)
        ax.set_yticks([i + 0.5 for i in range(n_lanes)], [f"slot {i + 1}" for i in range(n_lanes)])
        label = MODE_LABELS[cfg.mode]
        util = res.get("utilisation")
        util_text = f", utilisation {util:.3f}" if util is not None else ""
        ax.set_title(f"{label}{util_text}", fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(f"seconds since the first submission (d = {d} s, W = {w})")
    if many:
        handles = [Patch(color=special["bench_hog"], label="hog")] if "bench_hog" in users else []
        handles.append(Patch(color=plt.get_cmap("tab20")(0), label="fresh users (one colour each)"))
    else:
        handles = [Patch(color=colour[u], label=u.removeprefix("bench_")) for u in users]
    if any(r["aged"] for _c, out, _r in group for r in out["rows"]):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="aged"))
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=min(len(handles), 6))
    variant = f" weights {cfg0.variant}" if cfg0.variant else ""
    fig.suptitle(
        f"{cfg0.scenario}{variant}: {TITLES[cfg0.scenario]}", x=0.01, ha="left", fontsize=11
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_service(group: list[tuple[RunConfig, dict[str, Any], dict[str, Any]]], path: Path) -> None:
    """S6/S6b: each user's cumulative normalised service (work seconds / weight) over time.

    One panel per charge, the same axes. The shaded span is the contention period (every user
    has a task waiting); under fair sharing by time the lines rise together there.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cfg0 = group[0][0]
    weights = {label: weight for _name, weight, _lengths, label in cfg0.plan["users"]}
    colours = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(weights)}
    fig, axes = plt.subplots(
        1, len(group), figsize=(6.2 * len(group), 4.6), sharey=True, squeeze=False
    )
    for ax, (cfg, out, res) in zip(axes[0], group, strict=True):
        rows = out["rows"]
        if not rows:
            continue
        t0 = min(r["submitted"] for r in rows)
        for c, weight in weights.items():
            mine = sorted((r for r in rows if r["cls"] == c and has_work(r)),
                          key=lambda r: r["work_start"])  # fmt: skip
            # Service accrues while a task runs: a piecewise-linear curve through its events.
            events = sorted(
                [(r["work_start"] - t0, 1) for r in mine] + [(r["work_end"] - t0, -1) for r in mine]
            )
            ts, ys, running, acc, last = [0.0], [0.0], 0, 0.0, 0.0
            for t, step in events:
                acc += running * (t - last) / weight
                ts.append(t)
                ys.append(acc)
                running += step
                last = t
            share = (res.get("share_work") or {}).get(c)
            label = f"{c} (weight {weight}, {len(mine)} tasks"
            label += f", share {share:.3f})" if share is not None else ")"
            ax.plot(ts, ys, color=colours[c], linewidth=1.6, label=label)
        # The contention period: every user has a task waiting.
        grid = Grid(rows)
        mask = np.ones(grid.n, dtype=bool)
        for c in weights:
            mask &= grid.waiting([r for r in rows if r["cls"] == c]) > 0
        if mask.any():
            idx = np.flatnonzero(mask)
            ax.axvspan(idx[0] * DT, idx[-1] * DT, color="grey", alpha=0.12, lw=0)
            ax.text(idx[-1] * DT, 0, " contention ends", fontsize=7, va="bottom")
        jw = res.get("jain_work_per_weight")
        title = MODE_LABELS[cfg.mode]
        if jw is not None:
            title += f"\nweighted Jain {jw:.3f}, max gap {res.get('max_gap_s', 0):.2f} s"
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("seconds since the first submission")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[0, 0].set_ylabel("normalised service: work seconds / weight")
    fig.suptitle(
        f"{cfg0.scenario}: {TITLES[cfg0.scenario]} (W = {cfg0.workers})",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)
