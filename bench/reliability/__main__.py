"""The reliability benchmark's command line: `python -m bench.reliability [--quick] [options]`.

Writes bench/results/reliability.json and prints a summary; exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from bench.harness import ROOT

from .runner import Run
from .scenario import FAULTS

RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_reliability"
DESCRIPTION = (
    "Reliability benchmark: load over HTTP while a worker host dies, PostgreSQL blinks, "
    "Redis empties."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.reliability",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="the small run of `make test` (~1 min)")
    p.add_argument("--submissions", type=int, default=None, help="submissions in all [3000]")
    p.add_argument("--clients", type=int, default=None, help="concurrent HTTP clients [32]")
    p.add_argument("--users", type=int, default=None, help="users, weights 1,2,3,1,2,3... [6]")
    p.add_argument("--rate", type=float, default=None, help="submissions per second [30]")
    p.add_argument("--hosts", type=int, default=2, help="worker hosts (celery worker processes)")
    p.add_argument("--concurrency", type=int, default=2, help="slots per worker host")
    p.add_argument("--task-seconds", type=float, default=0.05, help="PQH_TASK_SECONDS")
    p.add_argument("--time-limit", type=int, default=None, help="PQH_TASK_TIME_LIMIT, seconds [10]")
    p.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"which faults, comma-separated, from {','.join(FAULTS)}; or 'none'",
    )
    p.add_argument("--db-outage", type=float, default=None, help="seconds PostgreSQL is cut [6]")
    p.add_argument("--redis-down", type=float, default=1.0, help="seconds Redis stays down")
    p.add_argument(
        "--cancel-every", type=int, default=25, help="cancel every Nth accepted submission"
    )
    p.add_argument("--fail-every", type=int, default=37, help="every Nth submission fails")
    p.add_argument("--poll-every", type=int, default=10, help="a GET /result every N submissions")
    p.add_argument("--drain-timeout", type=float, default=300, help="seconds to wait for the end")
    p.add_argument("--port", type=int, default=8102, help="the web server's port (127.0.0.1)")
    p.add_argument("--database-url", default=os.environ.get("PQH_BENCH_DATABASE_URL", DEFAULT_DB))
    p.add_argument("--out", type=Path, default=RESULTS / "reliability.json")
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    size = (
        {"submissions": 400, "clients": 12, "users": 3, "rate": 40.0, "db_outage": 3.0}
        if args.quick
        else {"submissions": 3000, "clients": 32, "users": 6, "rate": 30.0, "db_outage": 6.0}
    )
    size["time_limit"] = 5 if args.quick else 10
    for name, value in size.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    faults = [] if args.faults == "none" else [f.strip() for f in args.faults.split(",")]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        p.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    args.faults = [f for f in FAULTS if f in faults]
    if min(args.submissions, args.clients, args.users, args.hosts, args.concurrency) < 1:
        p.error("sizes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    return run.execute()


if __name__ == "__main__":
    sys.exit(main())
