"""The figures against the issue's targets, and the printed summary."""

from __future__ import annotations

from typing import Any

P99_TARGET_MS = 50
IDLE_CORES_TARGET = 0.01  # "about none": under 1% of a core
SYNC_RATIO_TARGET = 0.95


def per_waiter(results: dict[str, Any]) -> dict[str, Any]:
    """Resident memory and threads per waiter: with N waiters minus idle, / N."""
    held, opts = results["held"], results["options"]
    polls, streams = opts["polls"], opts["streams"]
    idle, with_polls, with_all = held["idle"], held["polls"], held["all"]
    return {
        "rss_idle_mib": round(idle["rss_bytes"] / 2**20, 1),
        "rss_all_mib": round(with_all["rss_bytes"] / 2**20, 1),
        "kib_per_poll": round((with_polls["rss_bytes"] - idle["rss_bytes"]) / 1024 / polls, 1),
        "kib_per_stream": round(
            (with_all["rss_bytes"] - with_polls["rss_bytes"]) / 1024 / max(1, streams), 1
        ),
        "kib_per_waiter": round(
            (with_all["rss_bytes"] - idle["rss_bytes"]) / 1024 / (polls + streams), 1
        ),
        "threads_idle": idle["threads"],
        "threads_polls": with_polls["threads"],
        "threads_all": with_all["threads"],
    }


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    ends = results.get("ends", {})
    for kind in ("poll", "stream"):
        p99 = ends.get(kind, {}).get("from_finished_at_ms", {}).get("p99")
        out.append({"figure": f"{kind}: finished_at -> first byte, p99 ms", "value": p99,
                    "target": f"<= {P99_TARGET_MS}",
                    "met": None if p99 is None else p99 <= P99_TARGET_MS})  # fmt: skip
    idle = results.get("idle", {}).get("cores")
    out.append({"figure": "wait server CPU while no task ends (cores)", "value": idle,
                "target": f"<= {IDLE_CORES_TARGET}",
                "met": None if idle is None else idle <= IDLE_CORES_TARGET})  # fmt: skip
    for route, ratio in results.get("sync", {}).get("ratio", {}).items():
        out.append({"figure": f"{route} req/s, waiters held / none", "value": ratio,
                    "target": f">= {SYNC_RATIO_TARGET}",
                    "met": None if ratio is None else ratio >= SYNC_RATIO_TARGET})  # fmt: skip
    if "held" in results:
        memory = per_waiter(results)
        results["memory"] = memory
        total = results["options"]["polls"] + results["options"]["streams"]
        bounded = memory["threads_all"] - memory["threads_idle"] < max(50, total // 10)
        out.append({"figure": "wait server threads, all held minus idle",
                    "value": memory["threads_all"] - memory["threads_idle"],
                    "target": "bounded (no thread per waiter)", "met": bounded})  # fmt: skip
    return out


def print_report(results: dict[str, Any]) -> None:
    print("\n== waiting ==")
    for kind in ("poll", "stream"):
        figures = results.get("ends", {}).get(kind)
        if figures:
            a, b = figures["from_finished_at_ms"], figures["from_notice_ms"]
            print(
                f"{kind:<7} {figures['answered']}/{figures['clients']} answered, "
                f"{figures['requests']} requests, {figures['errors']} errors; "
                f"finished_at->first byte p50 {a['p50']} p99 {a['p99']} max {a['max']} ms; "
                f"notice->first byte p50 {b['p50']} p99 {b['p99']} ms"
            )
    for window, row in results.get("ends", {}).get("by_5s", {}).items():
        print(f"  ends {window:<9} n {row['n']:<5} p50 {row['p50']} p99 {row['p99']} ms")
    if "memory" in results:
        print(f"memory  {results['memory']}")
    if "idle" in results:
        print(f"idle    {results['idle']}")
    sync = results.get("sync", {})
    for phase in ("none_before", "held", "none_after"):
        if phase in sync:
            cells = "  ".join(
                f"{route} {c['rps']:.0f} req/s {c['cpu_ms_per_request']} ms CPU/req"
                for route, c in sync[phase].items()
            )
            print(f"sync    {phase:<11} {cells}")
    clients = results.get("clients", {}).get("summary", {})
    for mode, row in clients.items():
        late = row["lateness_ms"]
        print(
            f"client  {mode:<17} {row['requests_per_task']} requests/task, "
            f"{row['server_cpu_ms_per_task']} ms server CPU/task, lateness p50 {late['p50']} "
            f"max {late['max']} ms"
        )
    for check in results.get("checks", []):
        mark = {True: "met", False: "MISSED", None: "n/a"}[check["met"]]
        print(f"check   {check['figure']}: {check['value']} (target {check['target']}) {mark}")
