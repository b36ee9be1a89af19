"""The reliability benchmark's summary on stdout: the load, the faults, the outcome, each check."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summarise(report: dict[str, Any], out: Path) -> None:
    """Print the report's summary, ending with OK or FAILED and the file written."""
    load, outcome = report["load"], report["outcome"]
    print()
    print(
        f"load: {load['requests']} requests ({load['by_kind']}) from {load['clients']} clients, "
        f"{load['users']} users; submissions for {load['submission_phase_s']} s "
        f"({load['submissions_per_s']}/s), POST p50 {load['submit_latency_ms']['p50']} ms "
        f"p99 {load['submit_latency_ms']['p99']} ms; all ended at {load['all_ended_at_s']} s"
    )
    print(f"statuses: {load['statuses']}")
    for fault in report["faults"]:
        detail = {k: v for k, v in fault.items() if k not in ("fault", "start", "end")}
        print(f"fault {fault['fault']}: {fault['start']:.1f}-{fault['end']:.1f} s {detail}")
    print(
        f"accepted {outcome['accepted']}, recorded {outcome['recorded']}: finished "
        f"{outcome['finished']}, failed {outcome['failed']}, cancelled {outcome['cancelled']}, "
        f"not ended {outcome['not_final']}; refused (503) {outcome['refused_503']}, "
        f"(429) {outcome['refused_429']}; "
        f"work runs {outcome['runs_completed']}, tasks run more than once "
        f"{outcome['tasks_run_more_than_once']}"
    )
    print(f"recovery seen in the worker logs: {outcome['recovery_in_worker_logs']}")
    for name, check in report["checks"].items():
        print(f"  [{'ok' if check['ok'] else 'FAIL'}] {name}: {check['detail']}")
    print(f"{'OK' if report['ok'] else 'FAILED'}; wrote {out} ({report['meta']['elapsed_s']} s)")
