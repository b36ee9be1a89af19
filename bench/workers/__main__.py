"""python -m bench.workers: the worker path, pqh against the peer's worker (see __init__.py)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, Processes, run_meta

from .runner import System, prepare_database, run_one


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--tasks", type=int, default=400, help="tasks per run (default 400)")
    parser.add_argument(
        "--lengths", default="0,0.05", help="task lengths in seconds, comma-separated (0,0.05)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="worker slots (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each system and length")
    parser.add_argument(
        "--before",
        type=Path,
        help="another source tree of pqh to measure beside this one (e.g. main's checkout)",
    )
    parser.add_argument(
        "--also",
        action="append",
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="also run this tree as NAME with these settings, e.g. buffer2:PQH_RELEASE_BUFFER=2",
    )
    parser.add_argument("--no-peer", action="store_true", help="leave the peer out")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/pqh_bench_workers",
        help="pqh's database (created if missing; emptied before each run)",
    )
    parser.add_argument(
        "--peer-database-url",
        default="postgres://postgres@127.0.0.1:5432/peer_bench_workers",
        help="the peer's database (created if missing; emptied before each run)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 tasks, lengths 0")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/workers.json")
    parser.add_argument(
        "--keep", type=Path, help="keep the logs and profiles in this folder (default: deleted)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.lengths = 30, "0"
    return args


def systems(args) -> list[System]:
    found = []
    if args.before is not None:
        found.append(System("before", args.before.resolve(), args.database_url))
    found.append(System("pqh", ROOT, args.database_url))
    for item in args.also or []:
        name, _, settings = item.partition(":")
        pairs = tuple(tuple(kv.split("=", 1)) for kv in settings.split(",") if "=" in kv)
        found.append(System(name, ROOT, args.database_url, pairs))
    if not args.no_peer:
        found.append(System("peer", ROOT, args.peer_database_url))
    return found


def summary(runs: list[dict]) -> list[dict]:
    """Per system and length: the median run's figures (by tasks per second)."""
    rows = []
    for key in sorted({(r["seconds"], r["system"]) for r in runs}):
        mine = sorted(
            (r for r in runs if (r["seconds"], r["system"]) == key),
            key=lambda r: r["tasks_per_s"] or 0,
        )
        middle = mine[len(mine) // 2]
        rows.append({k: v for k, v in middle.items() if k != "profile"} | {"runs": len(mine)})
    for row in rows:
        peer = next(
            (r for r in rows if r["system"] == "peer" and r["seconds"] == row["seconds"]), None
        )
        if peer and peer["tasks_per_s"] and row["tasks_per_s"]:
            row["vs_peer"] = round(row["tasks_per_s"] / peer["tasks_per_s"], 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lengths = [float(x) for x in args.lengths.split(",")]
    procs = Processes()
    runs: list[dict] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            chosen = systems(args)
            for system in chosen:
                if system.name in ("pqh", "peer"):  # the same schema: migrated by this tree
                    prepare_database(system, procs, workdir)
            for _ in range(args.rounds):
                for seconds in lengths:
                    for system in chosen:  # side by side: one of each, in turn
                        run = run_one(
                            system,
                            seconds=seconds,
                            tasks=args.tasks,
                            concurrency=args.concurrency,
                            procs=procs,
                            workdir=workdir,
                            profile=args.profile,
                        )
                        runs.append(run)
                        print(
                            f"{run['system']:>6} {seconds * 1000:>4.0f} ms tasks: "
                            f"{run['tasks_per_s']} tasks/s, {run['slot_ms_per_task']} ms of slot "
                            f"per task, worker CPU {run['worker_cpu_ms_per_task']} ms/task",
                            flush=True,
                        )
        finally:
            procs.stop_all()
    rows = summary(runs)
    print("\nsystem  length  tasks/s  ms of slot/task  worker CPU ms/task  vs peer")
    for r in rows:
        print(
            f"{r['system']:>6} {r['seconds'] * 1000:>5.0f} ms {r['tasks_per_s']:>8} "
            f"{r['slot_ms_per_task']:>16} {r['worker_cpu_ms_per_task']:>19} "
            f"{r.get('vs_peer', '')!s:>8}"
        )
    if args.profile:
        for run in runs:
            for side in ("pool", "main"):
                part = run["profile"][side]
                print(
                    f"\nprofile {run['system']} {run['seconds'] * 1000:g} ms, {side}: "
                    f"{part['samples']} samples"
                )
                for item in part["top"]:
                    print(f"  {item['percent']:5.1f}%  {item['function']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"meta": run_meta(), "runs": runs, "summary": rows}, indent=2) + "\n"
    )
    print(f"\n{len(runs)} runs in {time.monotonic() - started:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
