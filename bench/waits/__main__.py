"""Waiting benchmark: thousands of long polls and event streams held on the wait server.

Starts pqh's processes as the Procfile does (web, waits, one Celery worker, each through
honcho) on a database of its own and a private redis-server, and measures, in one run:

  1. the sync routes (wrk on POST /task and GET /result/<id> at the web server) with no waiter;
  2. --polls long polls (GET /result/<id>?wait=30) and --streams event streams held on the wait
     server: its memory and threads, and its CPU while nobody's task ends;
  3. the sync routes again with those waiters held;
  4. the worker starts and every waiter's task ends: from the end to the client's first byte;
  5. the sync routes with no waiter again;
  6. a client that wants its result at once, on 10-second tasks: long polls against polling
     the web server each second (requests, server CPU and lateness per task).

    .venv/bin/python -m bench.waits              # the default run (3-4 minutes)
    .venv/bin/python -m bench.waits --quick      # a smoke run (about a minute)

Writes bench/results/waits.json and prints the figures. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, run_meta
from fairqueue.testing import PrivateRedis

from .report import checks, print_report
from .stack import Stack, stack_env

RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_benchwaits"
COMMIT_PATHS = ("tasks_app", "pqh_site", "users_app", "Procfile")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.waits",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="50 polls, 20 streams, short phases")
    p.add_argument("--polls", type=int, default=None, help="long polls held (2000)")
    p.add_argument("--streams", type=int, default=None, help="event streams held (500)")
    p.add_argument("--wait", type=float, default=30, help="the long polls' ?wait= (30)")
    p.add_argument("--idle-seconds", type=float, default=None, help="CPU window, no end (8)")
    p.add_argument("--wrk-seconds", type=float, default=None, help="per wrk route (5)")
    p.add_argument("--connections", type=int, default=32, help="wrk's connections (32)")
    p.add_argument("--end-timeout", type=float, default=180, help="for every waiter to end")
    p.add_argument("--client-rounds", type=int, default=None, help="rounds of both clients (2)")
    p.add_argument("--client-seconds", type=float, default=None, help="task length there (10)")
    p.add_argument("--no-clients", action="store_true", help="skip the client comparison")
    p.add_argument("--port", type=int, default=8111, help="web; the wait server is on port+1")
    p.add_argument("--database-url", default=DEFAULT_DB)
    p.add_argument("--prefix", default="pqh_benchwaits")
    p.add_argument("--env", action="append", help="KEY=VALUE for every process (repeatable)")
    p.add_argument("--out", type=Path, default=RESULTS / "waits.json")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args(argv)
    quick = {"polls": 50, "streams": 20, "idle_seconds": 2, "wrk_seconds": 2,
             "client_rounds": 1, "client_seconds": 2}  # fmt: skip
    full = {"polls": 2000, "streams": 500, "idle_seconds": 8, "wrk_seconds": 5,
            "client_rounds": 2, "client_seconds": 10}  # fmt: skip
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def raise_open_files(need: int) -> int:
    """Raise this process's (and so its children's) open-files limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < need:
        raise SystemExit(
            f"need {need} open files, the limit is {soft}: use fewer --polls/--streams"
        )
    return soft


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_files(2 * (args.polls + args.streams) + 1000)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    results = {"meta": run_meta(COMMIT_PATHS), "options": {
        k: v for k, v in vars(args).items() if k not in ("out", "env")}}  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="pqh-bench-waits-"))
    private = PrivateRedis(workdir / "redis").start()
    args.redis_url = private.url
    stack = None
    try:
        from bench.api.runner import bench_lock, django_setup
        from bench.api.scenarios import queue_clear

        from .scenarios import ensure_users

        django_setup(args)
        os.environ.update(stack_env(args))
        lock = bench_lock(args.database_url, "waits")
        queue_clear(args.prefix, everything=True)
        probe = ensure_users("benchwaitprobe", 1)[0][1]
        stack = Stack(args, workdir)
        stack.start_servers(probe)
        from .runner import run_clients, run_waits

        asyncio.run(run_waits(args, stack, workdir, results))
        if not args.no_clients:
            print("a client that wants its result at once", flush=True)
            asyncio.run(run_clients(args, stack, results))
        lock.close()
    finally:
        if stack is not None:
            stack.stop()
        private.stop()
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    results["checks"] = checks(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_report(results)
    print(f"wrote {args.out} in {results['elapsed_seconds']:.0f} s", flush=True)
    missed = [c for c in results["checks"] if c["met"] is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
