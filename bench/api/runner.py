"""The API benchmark's runs: the table, the depth table and memory, the soak, the profile.

Each takes the parsed options, the servers, the users and a scratch folder, and adds its part
to `results` (the JSON's `table`, `depth` and `memory`, `soak`, `profile`). `django_setup` points
this process at the benchmark's database and prefix; `bench_lock` refuses a second run on it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import clean_environ
from fairqueue.stats import percentile

from .analysis import profile_parts, summarise
from .driver import wrk
from .probes import aged_count, prefix_memory, used_memory, window_memory
from .scenarios import (
    PEER_ROUTES,
    ROUTES,
    queue_clear,
    queue_fill,
    queue_reset,
    server_settings,
    write_targets,
)
from .server import http_post


def django_setup(args: argparse.Namespace, extra: dict[str, str] | None = None) -> None:
    """Point this process at the benchmark's database and prefix, create and migrate it.

    `extra`: more settings for this process (bench.door gives it the server's door settings).
    """
    for name in set(os.environ) - set(clean_environ()):
        del os.environ[name]
    os.environ.update(server_settings(args))
    os.environ.update(extra or {})
    import dj_database_url

    from pqh_site.database import database_create_if_missing

    if database_create_if_missing(dj_database_url.parse(args.database_url)):
        print(f"created database {dj_database_url.parse(args.database_url)['NAME']}", flush=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def bench_lock(database_url: str, name: str = "api"):
    """Return a connection holding the benchmark's advisory lock on its database.

    `name` names the benchmark (the lock is `pqh-bench-NAME`, the refusal says which).
    """
    import dj_database_url
    import psycopg

    from pqh_site.database import connect_params

    db = dj_database_url.parse(database_url)
    lock = psycopg.connect(dbname=db["NAME"], autocommit=True, **connect_params(db))
    got = lock.execute(
        "SELECT pg_try_advisory_lock(hashtext(%s))", (f"pqh-bench-{name}",)
    ).fetchone()[0]
    if not got:
        lock.close()
        raise SystemExit(
            f"another {name} benchmark is running against {db['NAME']}; "
            "wait for it or pass another --database-url"
        )
    return lock


def run_table(args, servers, users, workdir, results, peer=None) -> None:
    """Route x connections, several rounds; in every cell each server (the peer and the
    original on their routes) in turn, starting with a different one each round."""
    base_targets = queue_reset(args, users)
    tokens = write_targets(workdir / "tokens.txt", [(u[2], "-") for u in users])
    # (name, url, kind, its pids, its database's backends: None for the benchmark database's)
    targets_of: list[tuple[str, str, str, Any, Any]] = [
        (name, srv.url, "pqh", srv.processes, None) for name, srv in servers
    ]
    if peer is not None:
        peer_get = write_targets(
            workdir / "peer_get.txt", peer.poll_targets(users, args.base_depth)
        )
        targets_of.append(("peer", peer.server.url, "peer", peer.server.processes, peer.backends))
    if args.original_url:
        orig_users = write_targets(workdir / "orig_users.txt", [(u[1], "-") for u in users])
        orig_get = write_targets(workdir / "orig_get.txt", original_targets(args.original_url, 200))
        original_pids = (lambda: [args.original_pid]) if args.original_pid else None
        targets_of.append(("original", args.original_url, "original", original_pids, None))
    # Warm-up: every route once, unrecorded (imports, first connections, each process
    # remembering the users' credentials).
    get_targets = write_targets(workdir / "get.txt", base_targets)
    for _name, url, kind, _pids, _b in [] if args.quick else targets_of:
        for route, (_label, mode, _orig) in table_routes(args).items():
            if kind == "original" or (kind == "peer" and route not in PEER_ROUTES):
                continue
            targets = tokens if route.startswith("post") else get_targets
            if kind == "peer":
                targets = tokens if route.startswith("post") else peer_get
            wrk(url, mode, targets, connections=8, seconds=min(2, args.duration))
    cells: dict[str, dict[str, list]] = {}
    for rnd in range(args.rounds):
        order = targets_of[rnd % len(targets_of) :] + targets_of[: rnd % len(targets_of)]
        for route, (label, mode, orig_mode) in table_routes(args).items():
            for conns in args.connections:
                line = f"round {rnd + 1} {label:<22} c={conns:<3}"
                for name, url, kind, pids, backends in order:
                    if (kind == "original" and not orig_mode) or (
                        kind == "peer" and route not in PEER_ROUTES
                    ):
                        continue
                    if kind == "original":
                        targets = orig_users if route.startswith("post") else orig_get
                    elif kind == "peer":
                        peer.reset()
                        targets = tokens if route.startswith("post") else peer_get
                    else:
                        get_targets = write_targets(workdir / "get.txt", queue_reset(args, users))
                        targets = tokens if route.startswith("post") else get_targets
                    res = wrk(
                        url,
                        orig_mode if kind == "original" else mode,
                        targets,
                        connections=conns,
                        seconds=args.duration,
                        pids=pids,
                        backends=backends,
                    )
                    cells.setdefault(f"{route}@{conns}", {}).setdefault(name, []).append(res)
                    line += f" | {name} {res['rps']:>7.1f} req/s p99 {res['p99_ms']:>6.1f} ms"
                    if res["cpu_ms_per_request"]:
                        line += f" cpu {res['cpu_ms_per_request']:.2f} ms"
                print(line, flush=True)
    table = {}
    for key, by_target in cells.items():
        route, conns = key.split("@")
        entry: dict[str, Any] = {name: summarise(rounds) for name, rounds in by_target.items()}
        entry.update(route=ROUTES[route][0], connections=int(conns))
        if "original" in entry and entry["original"]["rps"]:
            entry["ratio"] = round(entry["pqh"]["rps"] / entry["original"]["rps"], 2)
            for name, _srv in servers[1:]:
                entry[f"ratio_{name}"] = round(entry[name]["rps"] / entry["original"]["rps"], 2)
        if "peer" in entry and entry["peer"]["rps"]:
            entry["vs_peer"] = peer_ratios(entry, [name for name, _srv in servers])
        table[key] = entry
    results["table"] = table


def table_routes(args) -> dict[str, tuple[str, str, str | None]]:
    """The routes of the table: `--routes`, or all."""
    return {route: ROUTES[route] for route in args.routes}


def peer_ratios(entry: dict[str, Any], names: list[str]) -> dict[str, dict]:
    """Each pqh server's requests/s and CPU per request over the peer's, in one cell."""
    peer = entry["peer"]
    ratios = {}
    for name in names:
        mine = entry[name]
        cpu = (
            round(mine["cpu_ms_per_request"] / peer["cpu_ms_per_request"], 2)
            if mine["cpu_ms_per_request"] and peer["cpu_ms_per_request"]
            else None
        )
        ratios[name] = {"rps": round(mine["rps"] / peer["rps"], 2), "cpu_per_request": cpu}
    return ratios


def run_depth(args, server, users, workdir, results) -> None:
    """Each route at 32 connections at the base depth, then with --deep-depth tasks queued."""
    conns = 32 if 32 in args.connections else args.connections[0]
    tokens = write_targets(workdir / "tokens.txt", [(u[2], "-") for u in users])

    def rounds(get_targets) -> dict[str, list]:
        """`--rounds` rounds of every route; `get_targets()`, called before each cell, sets the
        queue up for it and gives the GET routes' targets."""
        cells: dict[str, list] = {}
        for _ in range(args.rounds):
            for route, (_label, mode, _o) in ROUTES.items():
                get_targets_now = get_targets()
                targets = tokens if route.startswith("post") else get_targets_now
                cells.setdefault(route, []).append(
                    wrk(
                        server.url,
                        mode,
                        targets,
                        connections=conns,
                        seconds=args.duration,
                        pids=server.processes,
                    )
                )
        return cells

    shallow = rounds(lambda: write_targets(workdir / "get.txt", queue_reset(args, users)))
    queue_clear(args.prefix)
    mem_before, used_before = prefix_memory(args.prefix, "q:*"), used_memory()
    t = time.monotonic()
    deep_targets = queue_fill(users, args.deep_depth, processes=args.fill_processes)
    fill_s = time.monotonic() - t
    queued = prefix_memory(args.prefix, "q:*") - mem_before
    results["memory"] = {
        "queued_tasks": args.deep_depth,
        "fill_seconds": round(fill_s, 1),
        "bytes_per_queued_task": round(queued / args.deep_depth, 1),
        "used_memory_delta_per_queued_task": round(
            (used_memory() - used_before) / args.deep_depth, 1
        ),
        "aged_after_fill": aged_count(args.prefix),
    }
    print(
        f"filled {args.deep_depth} queued tasks in {fill_s:.1f} s: "
        f"{results['memory']['bytes_per_queued_task']} bytes each",
        flush=True,
    )
    write_targets(workdir / "deep.txt", deep_targets)
    deep = rounds(lambda: workdir / "deep.txt")
    table = {}
    for route, (label, _m, _o) in ROUTES.items():
        a, b = summarise(shallow[route]), summarise(deep[route])
        table[route] = {
            "route": label,
            "connections": conns,
            "shallow_depth": args.base_depth,
            "deep_depth": args.deep_depth,
            "shallow": a,
            "deep": b,
            "ratio": round(b["rps"] / a["rps"], 2) if a["rps"] else None,
        }
        print(
            f"depth {label:<22} {args.base_depth:>7}: {a['rps']:>8.1f} req/s  "
            f"{args.deep_depth:>7}: {b['rps']:>8.1f} req/s  ratio {table[route]['ratio']}  "
            f"cpu {a['cpu_ms_per_request']} -> {b['cpu_ms_per_request']} ms  "
            f"non-2xx {a['non_2xx']} / {b['non_2xx']}",
            flush=True,
        )
    results["depth"] = table
    results["memory"]["window"] = window_memory(users=args.window_users, per_user=40)
    results["memory"]["redis_used_memory"] = used_memory()
    results["memory"]["server_rss_bytes"] = server.rss_bytes()


def run_soak(args, server, users, workdir, results) -> None:
    """--soak: 10-second slices of the routes in turn at 32 connections, queue past 500k."""
    from pqh_site.core import core

    queue_clear(args.prefix)
    t = time.monotonic()
    targets = queue_fill(users, args.soak_start, processes=args.fill_processes)
    print(f"filled {args.soak_start} queued tasks in {time.monotonic() - t:.1f} s", flush=True)
    path = write_targets(workdir / "soak.txt", targets)
    slices = []
    deadline = time.monotonic() + args.soak_seconds
    while time.monotonic() < deadline:
        res = wrk(
            server.url,
            "mix",
            path,
            connections=32,
            seconds=args.slice_seconds,
            pids=server.processes,
            extra=",".join(ROUTES[r][1] for r in args.soak_routes),
        )
        res["queued"] = core().queue.waiting_count()
        slices.append(res)
        print(
            f"slice {len(slices):>3}: {res['rps']:>8.1f} req/s p99 {res['p99_ms']:>7.1f} ms "
            f"max {res['max_ms']:>7.1f} ms  non-2xx {res['non_2xx']}  queued {res['queued']}",
            flush=True,
        )
    median = percentile((s["rps"] for s in slices), 50)
    results["soak"] = {
        "connections": 32,
        "routes": [ROUTES[r][0] for r in args.soak_routes],
        "slice_seconds": args.slice_seconds,
        "start_queued": args.soak_start,
        "end_queued": slices[-1]["queued"],
        "median_rps": round(median, 1),
        "min_slice_ratio": round(min(s["rps"] for s in slices) / median, 2),
        "slices_under_80pct": sum(s["rps"] < 0.8 * median for s in slices),
        "stalls": sum(s["requests"] == 0 or s["max_ms"] > 2000 for s in slices),
        "slices": slices,
        "redis_used_memory": used_memory(),
        "redis_queue_bytes": prefix_memory(args.prefix, "q:*"),
        "server_rss_bytes": server.rss_bytes(),
    }


def run_profile(args, server, users, workdir, results, peer=None) -> None:
    """--profile: each route at 32 connections under py-spy (every server process); the
    peer's routes too, given the peer."""
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if pyspy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt")
    tokens = write_targets(workdir / "tokens.txt", [(u[2], "-") for u in users])
    runs = [("pqh", server, None, route) for route in table_routes(args)]
    if peer is not None:
        peer_get = write_targets(workdir / "peer_get.txt", peer.poll_targets(users, 100))
        runs += [("peer", peer.server, peer, r) for r in table_routes(args) if r in PEER_ROUTES]
    out: dict[str, Any] = {}
    for name, srv, of_peer, route in runs:
        label, mode, _o = ROUTES[route]
        if of_peer is not None:
            of_peer.reset()
            targets = tokens if route.startswith("post") else peer_get
        else:
            get_targets = write_targets(workdir / "get.txt", queue_reset(args, users))
            targets = tokens if route.startswith("post") else get_targets
        wrk(srv.url, mode, targets, connections=32, seconds=2)  # warm
        key = route if name == "pqh" else f"{name}:{route}"
        raw = workdir / f"profile_{key.replace(':', '_')}.txt"
        spy = subprocess.Popen(
            # --gil: only samples holding the GIL, i.e. Python running on a CPU, not waiting for
            # PostgreSQL or Redis (nor runnable but not scheduled, on a busy machine).
            [pyspy, "record", "--format", "raw", "--nolineno", "--nonblocking", "--gil"]
            + ["-r", "250"]
            + ["-s", "-d", f"{args.profile:g}", "-o", str(raw), "--pid", str(srv.proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        res = wrk(
            srv.url,
            mode,
            targets,
            connections=32,
            seconds=args.profile,
            pids=srv.processes,
            backends=of_peer.backends if of_peer is not None else None,
        )
        spy.wait(timeout=60)
        out[key] = {"route": label, "server": name, "load": res, **profile_parts(raw)}
        if args.profile_dir:
            args.profile_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, args.profile_dir / raw.name)
        print(
            f"profile {name} {label:<22} {res['rps']:>8.1f} req/s, "
            f"cpu {res['cpu_ms_per_request']} ms, {out[key]['samples']} samples"
        )
        for part, pct in sorted(out[key]["parts_pct"].items(), key=lambda kv: -kv[1]):
            if pct:
                print(f"    {pct:5.1f}%  {part}")
    results["profile"] = out


def original_targets(url: str, count: int) -> list[tuple[str, str]]:
    """Submit `count` tasks to the original (by many user names) for its GET route."""
    targets = []
    for i in range(count):
        name = f"benchapi_{i % 200:05d}"
        status, body = http_post(url, "/task", {"user_id": name, "x": "foo"})
        if status != 200:
            raise RuntimeError(f"the original answered {status} to POST /task: {body[:200]!r}")
        targets.append((name, json.loads(body)["task_id"]))
    return targets
