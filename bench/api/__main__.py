"""API load benchmark: every route under wrk at 8, 32 and 64 connections, the depth table, the soak.

Starts pqh's web server exactly as `make run` ships it (the Procfile's `web:` entry, through
honcho), with no Celery worker, on a database and Redis prefix of its own, and drives it with wrk
(`bench/wrk/api.lua` spreads requests over many users' tokens and their task ids). Beside it,
on POST /task and the poll, the peer (bench/peer/: the service a Django team writes without
pqh) on the same server line, its own database and redis-server (--no-peer leaves it out).

    .venv/bin/python -m bench.api            # the default run (7-8 minutes on a busy 2-core box)
    .venv/bin/python -m bench.api --quick    # a smoke run (seconds)
    .venv/bin/python -m bench.api --soak     # the soak: minutes at 32 connections past 500k

Writes bench/results/api.json (or api_soak.json) and prints a table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import ROOT, run_meta, tail
from fairqueue.testing import free_port

from .cpu import run_cpu
from .driver import meter_database
from .peer import Peer
from .probes import probe_counts
from .report import print_table
from .runner import bench_lock, django_setup, run_depth, run_profile, run_soak, run_table
from .scenarios import ROUTES, ensure_users, queue_clear, queue_reset
from .server import Server

# What the figures depend on: a change here makes the commit recorded "-dirty".
COMMIT_PATHS = ("tasks_app", "pqh_site", "users_app", "Procfile")
RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_benchapi"
DEFAULT_PREFIX = "pqh_benchapi"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.api",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--soak", action="store_true", help="run the soak instead of the tables")
    p.add_argument("--duration", type=float, default=None, help="seconds per wrk round (5)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per cell (2)")
    p.add_argument("--connections", default=None, help="comma-separated (8,32,64)")
    p.add_argument("--users", type=int, default=None, help="users with tokens (200)")
    p.add_argument("--base-depth", type=int, default=None, help="queued tasks in the table (100)")
    p.add_argument("--deep-depth", type=int, default=None, help="the depth table's (500000)")
    p.add_argument(
        "--routes",
        default=",".join(ROUTES),
        help=f"the table's routes, comma-separated ({','.join(ROUTES)})",
    )
    p.add_argument("--soak-start", type=int, default=490_000, help="queued when the soak starts")
    p.add_argument(
        "--soak-routes",
        default=",".join(ROUTES),
        help=f"the routes the soak runs in turn, comma-separated ({','.join(ROUTES)})",
    )
    p.add_argument("--soak-seconds", type=float, default=240, help="length of the soak")
    p.add_argument("--slice-seconds", type=float, default=10, help="one soak slice")
    p.add_argument("--window-users", type=int, default=None, help="window keys measured (1000)")
    p.add_argument("--probe-requests", type=int, default=None, help="per route in the probe (20)")
    p.add_argument("--fill-processes", type=int, default=3, help="processes filling the queue")
    p.add_argument("--no-depth", action="store_true", help="skip the depth table and memory")
    p.add_argument("--no-table", action="store_true", help="skip the route x connections table")
    p.add_argument(
        "--profile", type=float, default=None, help="seconds of py-spy per route, then stop"
    )
    p.add_argument("--profile-dir", type=Path, default=None, help="keep py-spy's raw stacks here")
    p.add_argument("--web", default=None, help="a web command instead of the Procfile's")
    p.add_argument("--env", action="append", help="KEY=VALUE for the server (repeatable)")
    p.add_argument(
        "--compare",
        action="append",
        help="NAME=COMMAND: another web command, on the next port, measured in turn with the "
        "shipped one in every cell of the table (repeatable)",
    )
    p.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="after the table: N requests through each request path in process, timed in CPU",
    )
    p.add_argument("--cpu-rounds", type=int, default=3, help="rounds of --cpu (3)")
    p.add_argument(
        "--cpu-tree",
        action="append",
        help="'NAME=DIR [KEY=VALUE ...]': another checkout's request path (or this one's with "
        "other settings) in --cpu, on the same database (repeatable)",
    )
    p.add_argument("--port", type=int, default=8105)
    p.add_argument(
        "--no-peer",
        action="store_true",
        help="leave out the peer (bench/peer/: the service a Django team writes without pqh)",
    )
    p.add_argument("--peer-port", type=int, default=None, help="the peer's port (a free one)")
    p.add_argument(
        "--peer-database-url",
        default=os.environ.get("PQH_BENCH_API_PEER_DATABASE_URL"),
        help="the peer's database (the benchmark's database URL with _peer after its name)",
    )
    p.add_argument("--original-url", default=None, help="drive the original's routes too")
    p.add_argument("--original-pid", type=int, default=None, help="its pid, for CPU per request")
    p.add_argument(
        "--database-url", default=os.environ.get("PQH_BENCH_API_DATABASE_URL", DEFAULT_DB)
    )
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help="Redis prefix of the run")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "duration": (1.0, 5.0),
        "rounds": (1, 2),
        "connections": ("8", "8,32,64"),
        "users": (5, 200),
        "base_depth": (20, 100),
        "deep_depth": (2000, 500_000),
        "window_users": (10, 1000),
        "probe_requests": (3, 20),
    }
    for name, (small, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    args.connections = [int(c) for c in str(args.connections).split(",")]
    args.soak_routes = args.soak_routes.split(",")
    args.routes = args.routes.split(",")
    if set(args.routes) - set(ROUTES):
        p.error(f"--routes takes {','.join(ROUTES)}")
    if set(args.soak_routes) - set(ROUTES):
        p.error(f"--soak-routes takes {','.join(ROUTES)}")
    if args.out is None:
        name = "api_soak.json" if args.soak else "api_profile.json" if args.profile else "api.json"
        args.out = RESULTS / name
    if args.prefix in ("pqh", "pqhtest"):
        p.error("--prefix must not be the prefix of `make run` or of the tests")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    django_setup(args)
    lock = bench_lock(args.database_url)
    meter_database(lock)
    workdir = Path(tempfile.mkdtemp(prefix="pqhbenchapi-"))
    server = Server(args, workdir)
    # --compare NAME=COMMAND: more servers, each on the next port, measured in turn.
    servers = [("pqh", server)]
    for i, item in enumerate(args.compare or [], 1):
        name, _, command = item.partition("=")
        servers.append((name, Server(args, workdir, command=command, port=args.port + i, tag=name)))
    with_peer = not (args.no_peer or args.soak or (args.no_table and not args.cpu))
    peer = Peer(args, workdir, port=args.peer_port or free_port()) if with_peer else None
    results: dict[str, Any] = {
        "meta": {
            **run_meta(COMMIT_PATHS),
            "web": server.command,
            "compare": args.compare or [],
            "server_env": args.env or [],
            "original_url": args.original_url,
            "peer": {"web": peer.server.command, "database": peer.database_url} if peer else None,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }
    }
    failed = False
    try:
        users = ensure_users(args.users)
        queue_reset(args, users)
        for name, srv in servers:
            srv.start(users[0][2])
            print(f"{name}: {srv.command} (pid {srv.proc.pid}), {len(users)} users", flush=True)
        if peer is not None:
            peer.start(users)
            print(f"peer: {peer.server.command} (pid {peer.server.proc.pid})", flush=True)
        if args.soak:
            run_soak(args, server, users, workdir, results)
        elif args.profile:
            run_profile(args, server, users, workdir, results, peer=peer)
        else:
            if not args.no_table:
                run_table(args, servers, users, workdir, results, peer=peer)
            if args.cpu:
                run_cpu(args, users, workdir, results, peer=peer)
            results["counts"] = probe_counts(queue_reset(args, users), requests=args.probe_requests)
            if not args.no_depth:
                run_depth(args, server, users, workdir, results)
    except Exception as exc:
        failed = True
        results["error"] = repr(exc)
        print(f"ERROR {exc!r}\n{tail(server.log)}", file=sys.stderr, flush=True)
    finally:
        for _name, srv in servers:
            srv.stop()
        if peer is not None:
            peer.stop()
        with contextlib.suppress(Exception):
            queue_clear(args.prefix, everything=True)
        lock.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print_table(results)
    print(f"\nwrote {args.out}; elapsed {results['meta']['elapsed_s']} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
