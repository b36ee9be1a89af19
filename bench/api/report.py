"""The API benchmark's tables on stdout."""

from __future__ import annotations

from .scenarios import ROUTES


def print_table(results: dict) -> None:
    """Print the route x connections table, the counts, memory and the soak, where present."""
    print(
        "\nroute                  conns |   pqh req/s    p50    p99  non2xx | original req/s    p99 | ratio"
    )
    for entry in results.get("table", {}).values():
        p, o = entry["pqh"], entry.get("original")
        line = f"{entry['route']:<22} {entry['connections']:>5} | {p['rps']:>10.1f} {p['p50_ms']:>6.1f} "
        line += f"{p['p99_ms']:>6.1f} {p['non_2xx'] + p['socket_errors']:>7} |"
        if o and "ratio" in entry:
            line += f" {o['rps']:>14.1f} {o['p99_ms']:>6.1f} | {entry['ratio']:.2f}"
            if o.get("stalled_rounds"):
                line += f" (original stalled in {o['stalled_rounds']} round(s))"
        for name, other in entry.items():
            if isinstance(other, dict) and "rps" in other and name not in ("pqh", "original"):
                line += f" | {name} {other['rps']:.1f} req/s p99 {other['p99_ms']:.1f}"
        print(line)
    peer_cells = [e for e in results.get("table", {}).values() if "vs_peer" in e]
    if peer_cells:
        print(
            "\nagainst the peer (bench/peer/)  | req/s   p50   p99  CPU ms/req | ... | peer req/s"
            "   p50   p99  CPU ms/req | x peer (req/s, CPU)"
        )
    for entry in peer_cells:
        line = f"{entry['route']:<22} {entry['connections']:>5}"
        for name in [*entry["vs_peer"], "peer"]:
            c = entry[name]
            line += f" | {name} {c['rps']:>7.1f} {c['p50_ms']:>5.1f} {c['p99_ms']:>5.1f} "
            line += f"{c['cpu_ms_per_request'] or 0:>6.2f}"
        for name, ratio in entry["vs_peer"].items():
            line += f" | {name} {ratio['rps']:.2f}x, CPU {ratio['cpu_per_request']}x"
        print(line)
    if "cpu" in results:
        print(
            "\nCPU ms per request, in process (median of rounds; Python + its PostgreSQL backend)"
        )
        for entry in results["cpu"].values():
            line = f"{entry['route']:<22}"
            for name, c in entry.items():
                if isinstance(c, dict):
                    line += f" | {name} {c['ms_per_request']:.3f} ({c['process_ms']:.3f} + "
                    line += f"{c['postgres_ms']:.3f})"
            print(line)
    if "counts" in results:
        print("\nper request:            SQL  health  Redis")
        for route, c in results["counts"].items():
            print(
                f"{ROUTES[route][0]:<22} {c['sql_queries']:>4} {c['health_checks']:>7} "
                f"{c['redis_round_trips']:>6}"
            )
    if "memory" in results:
        m = results["memory"]
        print(
            f"\nRedis: {m['bytes_per_queued_task']} bytes per queued task, "
            f"{m['window']['bytes_per_entry']} bytes per window entry"
        )
    if "soak" in results:
        s = results["soak"]
        print(
            f"\nsoak: median {s['median_rps']} req/s, slowest slice {s['min_slice_ratio']} of it, "
            f"{s['slices_under_80pct']} slices under 80%, {s['stalls']} stalls, "
            f"queue {s['start_queued']} -> {s['end_queued']}, server RSS "
            f"{s['server_rss_bytes'] / 2**20:.0f} MiB, Redis {s['redis_used_memory'] / 2**20:.0f} MiB"
        )
