"""The fairness benchmark's command line: `python -m bench.fairness [--quick] [options]`.

Also the submitting process's (`--child SPEC`, `--child-prepare SPEC`, started by the runner).
Writes bench/results/fairness.json, the PNGs, and prints the summary; exits 1 if a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import ROOT, relative, run_meta

from .plots import plot, plot_service
from .report import summary_lines
from .runner import run_all
from .scenarios import CHARGES, SCENARIOS, TITLES, build_configs, parse_weights, users_summary
from .submitter import child_prepare, child_run

RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.fairness",
        description="Fairness scenarios S1-S7 against real Celery workers, Redis and PostgreSQL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--d", type=float, default=0.2, help="task duration in seconds")
    p.add_argument("--workers", default="1,4", help="worker slot counts W, comma-separated")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, e.g. S1,S4")
    p.add_argument(
        "--charge", default="auto",
        help="PQH_CHARGE of the policy runs: tasks, time, or tasks,time (both, side by side); "
        "auto: S2, S6 and S6b under both, S1, S3, S4 and S5 (every task d long) under time",
    )  # fmt: skip
    p.add_argument("--s1-backlog", type=float, default=30, help="S1 hog backlog, tasks per slot")
    p.add_argument("--s1-delay", type=float, default=5, help="S1 newcomers arrive after, in d")
    p.add_argument("--newcomers", type=int, default=5, help="S1 newcomers, one task each")
    p.add_argument(
        "--s2-weights", default="1:3,1:2:5", help="S2 weight sets, comma-separated, e.g. 1:3,1:2:5"
    )
    p.add_argument(
        "--s2-backlog", type=float, default=40,
        help="S2 tasks per slot over all users, split in proportion to the weights",
    )  # fmt: skip
    p.add_argument(
        "--s2-level-bounds", default="1000000",
        help="PQH_LEVEL_BOUNDS of the S2 policy run: the default puts every task at level 0 so "
        "the users share one level; 'default' keeps the service's bounds",
    )  # fmt: skip
    p.add_argument("--s3-backlog", type=float, default=5, help="S3 hog backlog, tasks per slot")
    p.add_argument(
        "--s2-history",
        action="store_true",
        help="give every S2 user 36 x weight earlier submissions in its window first, so that "
        "with --s2-level-bounds default all of them contend at level 5",
    )
    p.add_argument("--s3-stream", type=float, default=50, help="S3 stream duration, in d")
    p.add_argument(
        "--s3-load", type=float, default=1.0, help="S3 stream rate as a fraction of W / d"
    )
    p.add_argument("--s3-max-wait", type=float, default=10, help="S3 PQH_MAX_WAIT_SECONDS, in d")
    p.add_argument(
        "--s3-strict", action=argparse.BooleanOptionalAction, default=True,
        help="S3 also runs the policy without aging",
    )  # fmt: skip
    p.add_argument("--s4-backlog", type=float, default=50, help="S4 tasks per slot")
    p.add_argument("--s5-count", type=int, default=20, help="S5 single submissions")
    p.add_argument("--s5-gap", type=float, default=None, help="S5 seconds apart (d + 0.15)")
    p.add_argument("--s6-workers", type=int, default=2, help="S6 and S6b worker slots W")
    p.add_argument("--s6-long-tasks", type=int, default=30, help="S6 tasks of 'long' (weight 1)")
    p.add_argument("--s6-long-seconds", type=float, default=1.0, help="S6 length of a long task")
    p.add_argument("--s6-short-tasks", type=int, default=300, help="S6 tasks of 'short' (weight 2)")
    p.add_argument("--s6-short-seconds", type=float, default=0.1, help="S6 length of a short task")
    p.add_argument("--s6b-weights", default="1,2,4", help="S6b users' weights")
    p.add_argument(
        "--s6b-means", default="0.5,0.16,0.05",
        help="S6b users' mean task lengths in seconds (exponentially distributed), same order",
    )  # fmt: skip
    p.add_argument(
        "--s6b-seconds", type=float, default=30,
        help="S6b: each user gets weight / sum(weights) of W x this much work, so that under "
        "time charging all stay backlogged for about this long",
    )  # fmt: skip
    p.add_argument("--s6b-seed", type=int, default=11, help="S6b random seed of the lengths")
    p.add_argument("--s7-workers", type=int, default=2, help="S7 worker slots W")
    p.add_argument("--s7-seconds", type=float, default=0.1, help="S7 length of every task")
    p.add_argument(
        "--s7-phase", type=float, default=8,
        help="S7 seconds after the go when team B's weight is raised (and about as long after)",
    )  # fmt: skip
    p.add_argument("--s7-weight", type=int, default=3, help="S7 team B's weight after the change")
    p.add_argument(
        "--release-buffer", type=int, default=None, help="PQH_RELEASE_BUFFER (service default)"
    )
    p.add_argument(
        "--timeout-factor", type=float, default=4.0, help="run timeout: x expected + 30 s"
    )
    p.add_argument("--quick", action="store_true", help="a small smoke run (about a minute)")
    p.add_argument("--out", type=Path, default=RESULTS / "fairness.json")
    p.add_argument("--png-dir", type=Path, default=None, help="where PNGs go (next to --out)")
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--raw", action="store_true", help="also write every task's row to *_rows.json")
    p.add_argument("--database-url", default=os.environ.get("PQH_BENCH_DATABASE_URL", DEFAULT_DB))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    p.add_argument("--keep-logs", action="store_true", help="keep the worker and child logs")
    p.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="an extra setting for every run (repeatable), e.g. PQH_WORKER_DISABLE_PREFETCH=0",
    )
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-prepare", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        # Small sizes, one W, no strict S3 run and one S2 weight set: about 10 runs of ~1-2 s.
        quick = {
            "d": 0.1,
            "workers": "2",
            "s1_backlog": 10,
            "s1_delay": 2,
            "newcomers": 3,
            "s2_weights": "1:3",
            "s2_backlog": 10,
            "s3_backlog": 2,
            "s3_stream": 10,
            "s3_max_wait": 4,
            "s3_strict": False,
            "s4_backlog": 10,
            "s5_count": 5,
            "s6_long_tasks": 4,
            "s6_short_tasks": 40,
            "s7_phase": 3,
            "scenarios": "S1,S2,S3,S4,S5,S6,S7",
        }
        defaults = {a.dest: a.default for a in p._actions}
        for name, value in quick.items():
            if getattr(args, name) == defaults[name]:
                setattr(args, name, value)
    args.workers = [int(w) for w in str(args.workers).split(",")]
    args.scenarios = [s.strip().upper() for s in args.scenarios.split(",")]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown or min(args.workers) < 1 or args.d <= 0 or args.s6_workers < 1:
        p.error(f"scenarios are {SCENARIOS}, W >= 1, d > 0 (got {unknown}, {args.workers})")
    args.s2_weights = [parse_weights(x) for x in args.s2_weights.split(",")]
    if args.charge != "auto":
        args.charge = [c.strip() for c in args.charge.split(",")]
        if not args.charge or any(c not in CHARGES for c in args.charge):
            p.error(f"--charge is auto, or a comma-separated list of {CHARGES}")
    args.s6b_weights = [int(x) for x in args.s6b_weights.split(",")]
    args.s6b_means = [float(x) for x in args.s6b_means.split(",")]
    if (
        len(args.s6b_weights) != len(args.s6b_means)
        or min(args.s6b_weights) < 1
        or min(args.s6b_means) <= 0
    ):
        p.error("--s6b-weights and --s6b-means: as many of each, weights >= 1, means > 0")
    if args.png_dir is None:
        args.png_dir = args.out.parent
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_run(json.loads(Path(args.child).read_text()))
        return 0
    if args.child_prepare:
        child_prepare(json.loads(Path(args.child_prepare).read_text()))
        return 0

    # A SIGTERM (e.g. a test's timeout) unwinds through the finally blocks, so workers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    configs = build_configs(args)
    print(
        f"pqh fairness benchmark: {len(configs)} runs, d={args.d} s, W={args.workers}, "
        f"scenarios {','.join(args.scenarios)}",
        flush=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.png_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "meta": {
            **run_meta(),
            "d": args.d,
            "workers": args.workers,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        },
        "scenarios": {},
    }
    groups, raw, failed = run_all(args, configs)
    for (scenario, variant, w), group in groups.items():
        entry = results["scenarios"].setdefault(scenario, {"title": TITLES[scenario], "runs": []})
        entry["runs"].append(scenario_run(args, scenario, variant, w, group))
    elapsed = time.monotonic() - started
    results["meta"]["elapsed_s"] = round(elapsed, 1)
    args.out.write_text(json.dumps(results, indent=1))
    if args.raw:
        args.out.with_name(args.out.stem + "_rows.json").write_text(json.dumps(raw))
    for line in summary_lines(results):
        print(line)
    print(f"\nwrote {relative(args.out)}; elapsed {elapsed:.1f} s")
    return 1 if failed else 0


def scenario_run(
    args: argparse.Namespace, scenario: str, variant: str, w: int, group: list
) -> dict[str, Any]:
    """One entry of `scenarios.<S>.runs` in the JSON: the plan, every mode's figures, the PNGs."""
    png = None
    if not args.no_png and any(out["rows"] for _c, out, _r in group):
        variant_slug = f"_{variant.replace(':', '-')}" if variant else ""
        path = args.png_dir / f"fairness_{scenario.lower()}{variant_slug}_w{w}.png"
        plot(group, path)
        png = str(relative(path))
    service_png = None
    if scenario in ("S6", "S6B") and not args.no_png and any(o["rows"] for _c, o, _r in group):
        path = args.png_dir / f"fairness_{scenario.lower()}_service_w{w}.png"
        plot_service(group, path)
        service_png = str(relative(path))
    plan = group[0][0].plan
    return {
        "W": w,
        "variant": variant,
        "png": png,
        "service_png": service_png,
        "plan": {k: v for k, v in plan.items() if k not in ("fresh", "newcomers", "users")}
        | users_summary(plan),
        "modes": {cfg.mode: res for cfg, _out, res in group},
    }


if __name__ == "__main__":
    sys.exit(main())
