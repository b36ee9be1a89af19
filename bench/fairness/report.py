"""The fairness benchmark's summary on stdout: per scenario, W and mode, the figures that matter."""

from __future__ import annotations

from typing import Any

from .scenarios import TITLES


def fmt(v, digits=2):
    """A figure for the table: "-" for None, floats to `digits` decimals."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The summary table of the results, one line per scenario, W and mode."""
    lines = []
    for scenario, data in results["scenarios"].items():
        lines.append(f"\n{scenario}: {TITLES[scenario]}")
        for run in data["runs"]:
            variant = f" weights {run['variant']}" if run["variant"] else ""
            lines.append(f"  W={run['W']}{variant}  ({run.get('png') or 'no png'})")
            for mode, res in run["modes"].items():
                if "error" in res:
                    lines.append(f"    {mode:12s} ERROR {res['error'].splitlines()[0]}")
                    continue
                waits = "  ".join(
                    f"{c}: {fmt(v['p50'])}/{fmt(v['p99'])}/{fmt(v['max'])}"
                    for c, v in res.get("wait_d", {}).items()
                    if len(res.get("wait_d", {})) <= 4
                )
                parts = [f"    {mode:12s} util {fmt(res.get('utilisation'), 3)}"]
                if waits:
                    parts.append(f"wait d p50/p99/max {waits}")
                if scenario == "S1":
                    parts.append(f"newcomers {res.get('newcomer_wait_d')}")
                    parts.append(f"overtakes {res.get('hog_overtakes')}")
                if scenario == "S2":
                    share = res.get("share") or {}
                    parts.append("share " + " ".join(f"{c}={fmt(v, 3)}" for c, v in share.items()))
                    parts.append(f"Jain {fmt(res.get('jain_share_per_weight'), 3)}")
                if scenario in ("S6", "S6B"):
                    share = res.get("share_work") or {}
                    slot = res.get("share") or {}
                    parts.append(
                        "work share " + " ".join(f"{c}={fmt(v, 3)}" for c, v in share.items())
                    )
                    parts.append(f"Jain {fmt(res.get('jain_work_per_weight'), 3)}")
                    parts.append(
                        "slot share " + " ".join(f"{c}={fmt(v, 3)}" for c, v in slot.items())
                    )
                    parts.append(
                        f"(Jain {fmt(res.get('jain_share_per_weight'), 3)}), "
                        f"contention {fmt(res.get('contention_s'), 1)} s, "
                        f"max gap {fmt(res.get('max_gap_s'))} s, "
                        f"pick gap {fmt(res.get('pick_gap_s'))} s = K {fmt(res.get('k_seen'))} "
                        f"(bound K {fmt(res.get('k_bound'))}: {fmt(res.get('bound_s'))} s)"
                    )
                if scenario == "S7":
                    for phase, fig in (res.get("phases") or {}).items():
                        share = fig.get("share") or {}
                        parts.append(
                            f"{phase}: share "
                            + " ".join(f"{c}={fmt(v, 3)}" for c, v in share.items())
                            + f" ({sum(fig['tasks'].values())} tasks, met {fig.get('met')})"
                        )
                if scenario == "S3":
                    parts.append(
                        f"hog max {fmt(res.get('hog_max_wait_d'))} d "
                        f"(bound {fmt(res.get('max_wait_bound_d'))} d), "
                        f"fresh max {fmt(res.get('wait_d', {}).get('fresh', {}).get('max'))} d, "
                        f"aged {res.get('aged')}"
                    )
                if scenario == "S4":
                    parts.append(
                        f"throughput {fmt(res.get('throughput_per_s'))}/s "
                        f"of {fmt(res.get('ideal_throughput_per_s'))}/s "
                        f"(ratio {fmt(res.get('throughput_ratio'), 3)}), "
                        f"slot time/task {fmt(res.get('slot_time_per_task_ms'), 1)} ms, "
                        f"slot gap p50 {fmt((res.get('slot_gap_ms') or {}).get('p50'))} ms"
                    )
                if scenario == "S5":
                    lat = res.get("latency_ms") or {}
                    parts.append(
                        f"submit->start ms p50 {fmt(lat.get('p50'))} p99 {fmt(lat.get('p99'))} "
                        f"max {fmt(lat.get('max'))}"
                    )
                if res.get("timed_out"):
                    parts.append("TIMED OUT")
                lines.append("  ".join(parts))
    return lines
