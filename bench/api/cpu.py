"""`--cpu N`: CPU per request of each request path, without the server, the network or wrk.

For pqh, each `--cpu-tree "NAME=DIR [KEY=VALUE …]"` (another checkout, e.g. main's, or this
one with other settings, on the same database and prefix) and the peer, `cpu_child.py` sends N requests one after the other through the WSGI
application the server runs, in a process of its own, and reports its CPU seconds and its
PostgreSQL backend's. One request at a time on one thread: no GIL contention, no queueing,
so the figure moves far less with the neighbours than a loaded server's. Rounds alternate the
paths (a different one first each round); the medians are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import ROOT, clean_environ
from fairqueue.stats import percentile

from .scenarios import PEER_ROUTES, ROUTES, queue_reset, server_settings, write_targets

CHILD = Path(__file__).with_name("cpu_child.py")


def _child(cwd: Path, env: dict[str, str], route: str, count: int, targets: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(CHILD), route, str(count), str(targets)],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"cpu_child in {cwd} failed:\n{proc.stderr[-2000:]}")
    return json.loads(line)


def run_cpu(args, users, workdir, results, peer=None) -> None:
    pqh_env = {**clean_environ(), **server_settings(args)}
    paths: list[tuple[str, Path, dict[str, str]]] = [("pqh", ROOT, pqh_env)]
    for item in args.cpu_tree or []:
        # NAME=DIR, then settings of its own: "noprep=. PQH_DB_PREPARE=0"
        name, _, rest = item.partition("=")
        folder, *settings = rest.split()
        env = {**pqh_env, **dict(s.split("=", 1) for s in settings)}
        paths.append((name, Path(folder).resolve(), env))
    if peer is not None:
        paths.append(("peer", ROOT, peer.env))
        peer_get = write_targets(workdir / "cpu_peer_get.txt", peer.poll_targets(users, 100))
    tokens = write_targets(workdir / "cpu_tokens.txt", [(u[2], "-") for u in users])
    runs: dict[str, dict[str, list]] = {}
    for rnd in range(args.cpu_rounds):
        order = paths[rnd % len(paths) :] + paths[: rnd % len(paths)]
        for route in PEER_ROUTES:
            line = f"cpu round {rnd + 1} {ROUTES[route][0]:<18}"
            for name, cwd, env in order:
                if name == "peer":
                    peer.reset()
                    targets = tokens if route == "post_task" else peer_get
                else:
                    get = write_targets(workdir / "cpu_get.txt", queue_reset(args, users))
                    targets = tokens if route == "post_task" else get
                res = _child(cwd, env, route, args.cpu, targets)
                res["ms_per_request"] = round(
                    1000 * (res["process_cpu_s"] + res["postgres_cpu_s"]) / res["requests"], 3
                )
                runs.setdefault(route, {}).setdefault(name, []).append(res)
                line += f" | {name} {res['ms_per_request']:.3f} ms"
            print(line, flush=True)
    table: dict[str, Any] = {}
    for route, by_name in runs.items():
        entry: dict[str, Any] = {"route": ROUTES[route][0], "requests": args.cpu}
        for name, rounds in by_name.items():
            entry[name] = {
                "ms_per_request": round(percentile((r["ms_per_request"] for r in rounds), 50), 3),
                "process_ms": round(
                    percentile((1000 * r["process_cpu_s"] / r["requests"] for r in rounds), 50), 3
                ),
                "postgres_ms": round(
                    percentile((1000 * r["postgres_cpu_s"] / r["requests"] for r in rounds), 50), 3
                ),
                "rounds": rounds,
            }
        table[route] = entry
    results["cpu"] = table
