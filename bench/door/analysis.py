"""The door benchmark's figures: the quiet user's latencies, the ratios, the CPU a refusal costs,
the limits' cost, and each figure against the issue's target."""

from __future__ import annotations

import os
from typing import Any

from fairqueue.stats import percentile

from .scenarios import (
    ATTACKERS,
    CPU_MAX_FRACTION,
    HEAVY_MIN_RATIO,
    QUIET_P95_FACTOR,
    QUIET_P95_MS,
    TARGETS,
    TRIES_MAX,
)

# What the summary gives for each attacker, as `<attacker>.<figure>`.
ATTACKER_FIGURES = (
    "cpu_ms_per_request",
    "cpu_ms_per_refused",
    "cpu_refused_over_poll",
    "quiet_alone_p95_ms",
    "quiet_beside_p95_ms",
    "quiet_all_accepted",
    "heavy_alone_rps",
    "heavy_beside_rps",
    "heavy_ratio",
    "sql_per_refusal",
    "answered_by_gate",
)


def _ms(values: list[float], pct: float) -> float | None:
    return round(1000 * percentile(values, pct), 2) if values else None


def quiet_summary(rows: list[tuple[float, float, float, int]], *, rate: float, seconds: float):
    """The open-loop user's phase: sent, accepted, latencies from the due time and from sending.

    Latency is counted from when the request was due, so a request that waited for its thread
    (the previous answer was late) counts that wait too.
    """
    latency = [answered - due for due, _sent, answered, _status in rows]
    service = [answered - sent for _due, sent, answered, _status in rows]
    statuses: dict[int, int] = {}
    for *_, status in rows:
        statuses[status] = statuses.get(status, 0) + 1
    accepted = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {
        "rate": rate,
        "seconds": seconds,
        "due": int(round(rate * seconds)),
        "sent": len(rows),
        "accepted": accepted,
        "all_accepted": bool(rows) and accepted == len(rows),
        "statuses": dict(sorted(statuses.items())),
        "late_over_10ms": sum(sent - due > 0.010 for due, sent, _a, _s in rows),
        "p50_ms": _ms(latency, 50),
        "p95_ms": _ms(latency, 95),
        "p99_ms": _ms(latency, 99),
        "max_ms": round(1000 * max(latency), 2) if latency else None,
        "service_p95_ms": _ms(service, 95),
    }


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(percentile(values, 50), 3) if values else None


def _ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def limits_figures(limits: dict) -> dict[str, Any]:
    """Per route: the median over rounds of requests/s and CPU per request, on and off."""
    out = {}
    for route, by_mode in limits["rounds"].items():
        entry: dict[str, Any] = {"route": limits["routes"][route]}
        for mode in ("on", "off"):
            runs = by_mode[mode]
            entry[mode] = {
                "rps": _median(r["rps"] for r in runs),
                "rps_rounds": [r["rps"] for r in runs],
                "p99_ms": _median(r["p99_ms"] for r in runs),
                "cpu_ms_per_request": _median(r["cpu_ms_per_request"] for r in runs),
                "cpu_rounds": [r["cpu_ms_per_request"] for r in runs],
                "non_2xx": sum(r["requests"] - r["ok"] for r in runs),
                "socket_errors": sum(r["socket_errors"] for r in runs),
                "other_cores": _median(r["other_cores"] for r in runs),
                "wrk_cores": _median(r["wrk_cores"] for r in runs),
            }
        entry["rps_on_over_off"] = _ratio(entry["on"]["rps"], entry["off"]["rps"], 3)
        entry["cpu_on_over_off"] = _ratio(
            entry["on"]["cpu_ms_per_request"], entry["off"]["cpu_ms_per_request"], 3
        )
        out[route] = entry
    return out


def attacker_figures(
    results: dict, poll_cpu: float | None, probes: dict | None = None
) -> dict[str, Any]:
    """Per attacker: the quiet user's p95 and acceptance, the heavy user's ratio, the CPU of a
    refusal (all its requests, and the refused ones once its served ones are taken out at a
    normal poll's cost), beside a normal poll's."""
    out = {}
    for key, res in results.items():
        alone = res["alone"]
        refused = alone["refused"]
        served = alone["requests"] - refused
        cpu_refused = None
        if refused:
            rest = alone["server_cpu_s"] - served * (poll_cpu or 0.0) / 1000
            cpu_refused = round(1000 * max(rest, 0.0) / refused, 3)
        quiet, heavy = res["quiet"], res["heavy"]
        out[key] = {
            "label": res["label"],
            "attacker_rps_alone": alone["rps"],
            "attacker_statuses_alone": alone["statuses"],
            "cpu_ms_per_request": alone["cpu_ms_per_request"],
            "cpu_ms_per_refused": cpu_refused,
            "cpu_refused_over_poll": _ratio(cpu_refused, poll_cpu, 3),
            "attacker_wrk_cores": alone["wrk_cores"],
            "attacker_server_cores": alone["server_cores"],
            "quiet_alone_p95_ms": quiet["alone"]["p95_ms"],
            "quiet_beside_p95_ms": quiet["beside"]["p95_ms"],
            "quiet_p95_ratio": _ratio(quiet["beside"]["p95_ms"], quiet["alone"]["p95_ms"]),
            "quiet_alone_accepted": f"{quiet['alone']['accepted']}/{quiet['alone']['sent']}",
            "quiet_beside_accepted": f"{quiet['beside']['accepted']}/{quiet['beside']['sent']}",
            "quiet_all_accepted": quiet["alone"]["all_accepted"]
            and quiet["beside"]["all_accepted"],
            "heavy_alone_rps": heavy["alone"]["rps"],
            "heavy_beside_rps": heavy["beside"]["rps"],
            "heavy_ratio": _ratio(heavy["beside"]["rps"], heavy["alone"]["rps"]),
            "priming_password_checks": res["priming"].get("password_checks"),
            # What else ran on the machine during this attacker's phases (cores, the most).
            "other_cores_max": max(
                phase["other_cores"]
                for phase in (
                    alone,
                    quiet["alone"],
                    quiet["beside"],
                    heavy["alone"],
                    heavy["beside"],
                )
            ),
        }
        out[key]["heavy_beside_cores"] = _cores_beside(alone, heavy)
        probe = (probes or {}).get(key)
        if probe:
            out[key].update(
                answered_by_gate=probe["answered_by_gate"],
                sql_per_refusal=probe["sql_per_request"],
                redis_per_refusal=probe["redis_per_request"],
                log_lines_per_refusal=probe["log_lines_per_request"],
            )
    return out


def _cores_beside(attacker_alone: dict, heavy: dict) -> dict[str, float | None]:
    """Where the machine's cores went while the heavy user ran beside the attacker: each one's
    requests at the server CPU they cost alone, wrk, this process, anything else, and idle."""
    beside, alone = heavy["beside"], heavy["alone"]
    attacker = beside.get("attacker")
    wall = beside["wall_s"]
    if not attacker or not wall or not alone["requests"] or not attacker_alone["requests"]:
        return {}
    per_attack = attacker_alone["server_cpu_s"] / attacker_alone["requests"]
    per_heavy = alone["server_cpu_s"] / alone["requests"]
    cpus = os.cpu_count() or 1
    return {
        "attacker_requests_per_s": round(attacker["requests"] / wall, 1),
        "server_for_attacker": round(attacker["requests"] * per_attack / wall, 2),
        "server_for_heavy": round(beside["requests"] * per_heavy / wall, 2),
        "server_measured": beside["server_cores"],
        "wrk": beside["wrk_cores"],
        "bench": beside["bench_cores"],
        "other": beside["other_cores"],
        "idle": round(max(0.0, cpus - beside["machine_cores"]), 2),
    }


def figures(results: dict) -> dict[str, Any]:
    """Every headline figure of the run, flat (the smoke test checks each is there)."""
    polls = results["normal_poll"]
    poll_cpu = _median(p["cpu_ms_per_request"] for p in polls)
    flat: dict[str, Any] = {
        "tries_basic": results["tries"]["basic"]["answered_before_refusal"],
        "tries_basic_password_checks": results["tries"]["basic"]["password_checks"],
        "tries_admin": results["tries"]["admin"]["answered_before_refusal"],
        "tries_admin_password_checks": results["tries"]["admin"]["password_checks"],
        "normal_poll_rps": _median(p["rps"] for p in polls),
        "normal_poll_cpu_ms": poll_cpu,
    }
    probes = results.get("refusal_probe")
    attackers = attacker_figures(results["attackers"], poll_cpu, probes)
    for key, entry in attackers.items():
        for name in ATTACKER_FIGURES:
            flat[f"{key}.{name}"] = entry.get(name)
    if probes:
        flat["normal_poll_sql"] = probes["normal_poll"]["sql_per_request"]
    limits = limits_figures(results["limits"])
    for route, entry in limits.items():
        for mode in ("on", "off"):
            flat[f"limits.{route}.{mode}_rps"] = entry[mode]["rps"]
            flat[f"limits.{route}.{mode}_cpu_ms"] = entry[mode]["cpu_ms_per_request"]
        flat[f"limits.{route}.rps_on_over_off"] = entry["rps_on_over_off"]
    return {"flat": flat, "attackers": attackers, "limits": limits}


def checks(results: dict, figs: dict) -> list[dict[str, Any]]:
    """Each figure with a target: its value, the target, met or not."""
    rows = []

    def row(figure: str, value, target: str, met: bool | None, other=None) -> None:
        rows.append(
            {"figure": figure, "value": value, "target": target, "met": met, "other_cores": other}
        )

    for name in ("basic", "admin"):
        tries = results["tries"][name]
        worst = max(tries["answered_before_refusal"], tries["password_checks"])
        row(
            f"tries before the first refusal, {name}",
            f"{tries['answered_before_refusal']} answered, {tries['password_checks']} checked",
            TARGETS["tries"],
            tries["refused_at"] is not None and worst <= TRIES_MAX,
        )
    checked = {
        key: entry["priming_password_checks"]
        for key, entry in figs["attackers"].items()
        if entry["priming_password_checks"] is not None
    }
    row(
        "passwords checked before the lockout, 8 connections at once",
        ", ".join(f"{key} {n}" for key, n in checked.items()),
        f"none (the limit is {TRIES_MAX}: concurrent checks pass it)",
        None,
    )
    poll_cpu = figs["flat"]["normal_poll_cpu_ms"]
    for attacker in ATTACKERS:
        entry = figs["attackers"][attacker.key]
        alone, beside = entry["quiet_alone_p95_ms"], entry["quiet_beside_p95_ms"]
        row(
            f"quiet user accepted, beside {attacker.key}",
            f"{entry['quiet_alone_accepted']} alone, {entry['quiet_beside_accepted']} beside",
            TARGETS["quiet_accepted"],
            entry["quiet_all_accepted"],
            entry["other_cores_max"],
        )
        row(
            f"quiet user p95, beside {attacker.key}",
            f"{beside} ms (alone {alone} ms, x{entry['quiet_p95_ratio']})",
            TARGETS["quiet_p95"],
            beside is not None
            and alone is not None
            and (beside <= QUIET_P95_FACTOR * alone or beside < QUIET_P95_MS),
            entry["other_cores_max"],
        )
        row(
            f"heavy user beside {attacker.key} / alone",
            f"{entry['heavy_ratio']} ({entry['heavy_beside_rps']} / {entry['heavy_alone_rps']} req/s)",
            TARGETS["heavy_ratio"],
            entry["heavy_ratio"] is not None and entry["heavy_ratio"] >= HEAVY_MIN_RATIO,
            entry["other_cores_max"],
        )
        row(
            f"CPU per refused request, {attacker.key}",
            f"{entry['cpu_ms_per_refused']} ms ({entry['cpu_refused_over_poll']} of a poll's "
            f"{poll_cpu} ms)",
            TARGETS["cpu_refused"],
            entry["cpu_refused_over_poll"] is not None
            and entry["cpu_refused_over_poll"] <= CPU_MAX_FRACTION,
            entry["other_cores_max"],
        )
    for entry in figs["limits"].values():
        on, off = entry["on"], entry["off"]
        row(
            f"limits on / off, {entry['route']}, 32 conns",
            f"{on['rps']} / {off['rps']} req/s (x{entry['rps_on_over_off']}), "
            f"CPU {on['cpu_ms_per_request']} / {off['cpu_ms_per_request']} ms",
            "none (reported)",
            None,
            max(on["other_cores"] or 0, off["other_cores"] or 0),
        )
    return rows
