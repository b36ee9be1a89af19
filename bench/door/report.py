"""The door benchmark's table on stdout: every figure beside its target, then the limits' cost."""

from __future__ import annotations


def _mark(met: bool | None) -> str:
    return "-" if met is None else "yes" if met else "MISSED"


def print_table(results: dict) -> None:
    if "checks" not in results:
        return
    width = max(len(r["figure"]) for r in results["checks"])
    print(f"\n{'figure':<{width}}  {'value':<48}  {'target':<40}  met     other cores")
    for r in results["checks"]:
        other = "" if r.get("other_cores") is None else r["other_cores"]
        print(
            f"{r['figure']:<{width}}  {str(r['value']):<48}  {r['target']:<40}  "
            f"{_mark(r['met']):<6}  {other}"
        )
    figs = results["figures"]
    print(
        f"\nnormal poll (GET /result/<id>, 32 conns, read rate off): "
        f"{figs['flat']['normal_poll_rps']} req/s, {figs['flat']['normal_poll_cpu_ms']} ms CPU each"
    )
    print("\nattacker alone                            req/s   CPU ms/req  wrk cores  statuses")
    for a in figs["attackers"].values():
        print(
            f"{a['label']:<40} {a['attacker_rps_alone']:>8.1f} {a['cpu_ms_per_request']!s:>11} "
            f"{a['attacker_wrk_cores']!s:>10}  {a['attacker_statuses_alone']}"
        )
    if results.get("refusal_probe"):
        print("\none request, in process     answered by gate  SQL  Redis  log lines  statuses")
        for kind, p in results["refusal_probe"].items():
            print(
                f"{kind:<27} {p['answered_by_gate']:>16} {p['sql_per_request']:>4} "
                f"{p['redis_per_request']:>6} {p['log_lines_per_request']:>10}  {p['statuses']}"
            )
    print("\nlimits' cost, 32 conns      on req/s  off req/s  on/off   on CPU ms  off CPU ms")
    for entry in figs["limits"].values():
        on, off = entry["on"], entry["off"]
        print(
            f"{entry['route']:<26} {on['rps']!s:>9} {off['rps']!s:>10} "
            f"{entry['rps_on_over_off']!s:>7} {on['cpu_ms_per_request']!s:>11} "
            f"{off['cpu_ms_per_request']!s:>11}   rounds on {on['rps_rounds']} off {off['rps_rounds']}"
        )
    meta = results["meta"]
    print(f"\nload average before {meta.get('load_before')}, after {meta.get('load_after')}")
