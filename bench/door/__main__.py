"""The door benchmark: is the service fair at the door too? (issue "Fair at the door too")

Starts pqh's web server as the Procfile ships it (through honcho; HTTP basic on, so it can be
attacked; no Celery worker: submissions just queue), on a database and Redis prefix of its own,
and shows side by side in one run:

1. tries before the first refusal, over basic auth and at the admin's login (target <= 10);
2. a quiet user at a steady 20 submissions a second (open loop), alone and beside each
   attacker (every submission accepted, p95 within 3x of alone or under 50 ms);
3. a heavy user submitting as fast as answered on 2 connections, alone and beside each attacker
   (>= 0.5x of alone), and the CPU of a refused request beside a normal poll's (a tenth);
4. what the limits themselves cost: POST /task and GET /result/<id> at 32 connections with the
   limits on and off (a second server), alternating;
and, counted in this process, what one refused request of each attacker does (who answers it,
SQL statements, Redis round trips, log lines).

Attackers: A, 8 connections sending one wrong basic password; A', a new wrong password each
request; B, one user polling its own result on 32 connections at the default read rate.

    .venv/bin/python -m bench.door            # the default run (about 6 minutes)
    .venv/bin/python -m bench.door --quick    # a smoke run (about a minute)

Writes bench/results/door.json and prints a table; exits 1 on an error, and with --strict also
when a figure misses its target. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api.driver import meter_database
from bench.api.runner import bench_lock, django_setup
from bench.api.scenarios import queue_clear
from bench.api.server import Server
from bench.harness import ROOT, run_meta, tail

from . import clients
from .analysis import checks, figures
from .probes import probe_refusals
from .report import print_table
from .runner import (
    Context,
    clear_lockouts,
    run_attackers,
    run_limits,
    run_normal_poll,
    run_tries,
    warm_up,
)
from .scenarios import DOOR_SETTINGS, USERS, ensure_users, run_tag, sizes

# What the figures depend on: a change here makes the commit recorded "-dirty".
COMMIT_PATHS = ("tasks_app", "pqh_site", "users_app", "fairqueue", "Procfile")
RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_benchdoor"
DEFAULT_PREFIX = "pqh_benchdoor"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.door",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short phases: a smoke run")
    p.add_argument("--seconds", type=int, default=None, help="seconds per phase (10; 2)")
    p.add_argument(
        "--rounds", type=int, default=None, help="on/off rounds of the limits' cost (3; 1)"
    )
    p.add_argument("--quiet-rate", type=float, default=None, help="the quiet user's rate (20/s)")
    p.add_argument(
        "--quiet-threads", type=int, default=4, help="threads of the quiet user's client"
    )
    p.add_argument(
        "--prime-seconds", type=int, default=None, help="per priming run of an attacker (2)"
    )
    p.add_argument("--lead-seconds", type=float, default=None, help="an attacker's head start (1)")
    p.add_argument("--warm-seconds", type=int, default=None, help="per warm-up run (2)")
    p.add_argument("--basic-cap", type=int, default=300, help="most basic tries (300)")
    p.add_argument("--admin-cap", type=int, default=50, help="most admin login tries (50)")
    p.add_argument("--strict", action="store_true", help="exit 1 if a figure misses its target")
    p.add_argument("--port", type=int, default=8107, help="the server's; limits off on PORT+1")
    p.add_argument(
        "--database-url", default=os.environ.get("PQH_BENCH_DOOR_DATABASE_URL", DEFAULT_DB)
    )
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help="Redis prefix of the run")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    sizes(args)
    if args.out is None:
        args.out = RESULTS / "door.json"
    if args.prefix in ("pqh", "pqhtest"):
        p.error("--prefix must not be the prefix of `make run` or of the tests")
    # What bench.api's Server and django_setup read: the Procfile's web line, its settings.
    args.web = None
    args.env = [f"{k}={v}" for k, v in DOOR_SETTINGS.items()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    django_setup(args, extra=DOOR_SETTINGS)
    lock = bench_lock(args.database_url, name="door")
    meter_database(lock)
    workdir = Path(tempfile.mkdtemp(prefix="pqhbenchdoor-"))
    server = Server(args, workdir)
    results: dict[str, Any] = {
        "meta": {
            **run_meta(COMMIT_PATHS),
            "web": server.command,
            "server_env": DOOR_SETTINGS,
            "load_before": load_before,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }
    }
    failed = False
    try:
        users = ensure_users()
        results["users"] = {
            u.key: {k: users[u.key][k] for k in ("name", "submit_rate", "read_rate", "role")}
            for u in USERS
        }
        queue_clear(args.prefix)
        clear_lockouts()
        server.start(users["heavy"]["token"])
        print(f"web: {server.command} (pid {server.proc.pid}) on {server.url}", flush=True)
        ctx = Context(args=args, server=server, users=users, workdir=workdir, tag=run_tag())
        warm_up(ctx)
        results["limits"] = run_limits(ctx)
        results["tries"] = run_tries(ctx)
        results["normal_poll"] = [run_normal_poll(ctx)]
        results["attackers"] = run_attackers(ctx)
        results["refusal_probe"] = probe_refusals(users, ctx.tag)
        results["normal_poll"].append(run_normal_poll(ctx))
        results["figures"] = figures(results)
        results["checks"] = checks(results, results["figures"])
    except Exception as exc:
        failed = True
        results["error"] = repr(exc)
        print(f"ERROR {exc!r}\n{tail(server.log)}", file=sys.stderr, flush=True)
    finally:
        clients.stop_all()
        server.stop()
        try:
            queue_clear(args.prefix, everything=True)
            clear_lockouts()
        except Exception as exc:  # the result file is still written
            print(f"cleaning up: {exc!r}", file=sys.stderr, flush=True)
        lock.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print_table(results)
    missed = [c["figure"] for c in results.get("checks", []) if c["met"] is False]
    if missed:
        print(f"\nmissed: {'; '.join(missed)}")
    print(f"\nwrote {args.out}; elapsed {results['meta']['elapsed_s']} s")
    if failed:
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
