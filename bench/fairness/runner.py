"""The orchestrator: the benchmark database, each run's Redis keys and processes, the run loop.

For every run it starts, with one environment, a Celery worker (`-c W`) and the submitting
process (`python -m bench.fairness --child SPEC`, submitter.py), waits until both are ready,
says go, waits for the submitter's rows and stops both. Every run has its own Redis prefix, whose
keys are deleted before and after; an advisory lock refuses a second benchmark on the database.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Processes, clean_environ, tail

from .analysis import analyse
from .scenarios import RunConfig, teams_needed, users_needed

# The submitting process: this package's command line with --child or --child-prepare.
CHILD = [sys.executable, "-m", "bench.fairness"]


def base_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of every process of the invocation: the caller's without any setting."""
    env = clean_environ()
    env.update(
        DJANGO_SETTINGS_MODULE="pqh_site.settings",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        PQH_SECRET_KEY="pqh-bench-only-not-a-secret",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    # --env KEY=VALUE: extra settings for every run, e.g. a Celery option's before/after.
    for item in args.env or []:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def ensure_database(url: str):
    """Create the benchmark database if missing; return a connection holding its lock."""
    import dj_database_url
    import psycopg

    from pqh_site.database import connect_params, database_create_if_missing

    db = dj_database_url.parse(url)
    params = connect_params(db)
    if database_create_if_missing(db):
        print(f"created database {db['NAME']}")
    lock = psycopg.connect(dbname=db["NAME"], autocommit=True, **params)
    if not lock.execute("SELECT pg_try_advisory_lock(hashtext('pqh-bench-fairness'))").fetchone()[
        0
    ]:
        lock.close()
        raise SystemExit(
            f"another fairness benchmark is running against {db['NAME']}; "
            "wait for it or pass another --database-url"
        )
    return lock


def clear_prefix(redis_client, prefix: str) -> int:
    """Delete every key of a run: all are under the hash tag "{prefix}:" (the broker's too);
    the untagged forms are those of commits before the tag, or of Celery's own keys."""
    names = list(redis_client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
    names += list(redis_client.scan_iter(match=f"{prefix}:*", count=1000))
    names += list(redis_client.scan_iter(match=f"{prefix}.*", count=1000))
    if names:
        redis_client.delete(*names)
    return len(names)


def run_child(procs: Processes, name: str, cmd_args: list[str], env: dict[str, str], log: Path):
    """Run the child with `cmd_args` to its end (5 minutes at most); RuntimeError if it fails."""
    proc = procs.start(name, [*CHILD, *cmd_args], env=env, log=log)
    try:
        rc = proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        rc = None
    procs.stop(name)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd_args)} failed ({rc}):\n{tail(log)}")


def run_one(
    cfg: RunConfig, args: argparse.Namespace, procs: Processes, workdir: Path, redis_client, run_id
):
    """Run one configuration with its own worker and submitter; return the child's output."""
    prefix = f"pqhbench{run_id}_{cfg.slug}"
    rundir = workdir / cfg.slug
    rundir.mkdir()
    env = base_env(args)
    env.update(cfg.env)
    env["PQH_REDIS_PREFIX"] = prefix
    timeout = args.timeout_factor * cfg.expected_seconds + 30
    spec = {
        "workdir": str(rundir),
        "tag": f"{run_id}_{cfg.slug}",
        "scenario": cfg.scenario,
        "plan": cfg.plan,
        "d": cfg.d,
        "timeout": timeout,
        "usernames": sorted(users_needed([cfg])),
    }
    (rundir / "spec.json").write_text(json.dumps(spec))
    clear_prefix(redis_client, prefix)
    worker_log = rundir / "worker.log"
    child_log = rundir / "child.log"
    worker_name, child_name = f"worker-{cfg.slug}", f"submitter-{cfg.slug}"
    try:
        worker = procs.start(
            worker_name,
            [
                sys.executable, "-m", "celery", "-A", "pqh_site", "worker",
                "-c", str(cfg.workers), "--without-mingle", "--without-gossip",
                # INFO, because the " ready." line that says the worker consumes is INFO.
                "-l", "info", "-n", f"pqhbench-{run_id}-{cfg.slug}@%h",
            ],
            env=env,
            log=worker_log,
        )  # fmt: skip
        child = procs.start(
            child_name,
            [*CHILD, "--child", str(rundir / "spec.json")],
            env=env,
            log=child_log,
        )
        deadline = time.monotonic() + 60
        worker_ready = child_ready = False
        while not (worker_ready and child_ready):
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{tail(worker_log)}")
            if child.poll() is not None:
                raise RuntimeError(f"submitter exited early:\n{tail(child_log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker or submitter not ready in 60 s:\n{tail(worker_log)}")
            worker_ready = worker_ready or " ready." in tail(worker_log, 100_000)
            child_ready = child_ready or (rundir / "ready").exists()
            time.sleep(0.02)
        (rundir / "go").write_text("")
        hard_deadline = time.monotonic() + timeout + 60
        while child.poll() is None:
            if worker.poll() is not None:
                raise RuntimeError(f"worker died during the run:\n{tail(worker_log)}")
            if time.monotonic() > hard_deadline:
                raise RuntimeError(f"submitter did not end:\n{tail(child_log)}")
            time.sleep(0.05)
        if child.returncode != 0:
            raise RuntimeError(f"submitter failed ({child.returncode}):\n{tail(child_log)}")
        out = json.loads((rundir / "rows.json").read_text())
        out["worker_log_errors"] = [
            line for line in tail(worker_log, 1_000_000).splitlines() if "ERROR" in line
        ][:20]
        return out
    finally:
        for name in (child_name, worker_name):
            procs.stop(name)
        clear_prefix(redis_client, prefix)


def run_all(
    args: argparse.Namespace, configs: list[RunConfig]
) -> tuple[dict[tuple[str, str, int], list], dict[str, Any], bool]:
    """Run and analyse every configuration, in order; one failed run does not stop the others.

    Returns the runs as (config, the child's output, the analysis) grouped by (scenario,
    variant, W), each run's raw output by slug (with --raw), and whether any run failed.
    Everything started is stopped, and the run's folder removed (kept with --keep-logs or after
    a failure), before it returns.
    """
    import redis

    run_id = f"{os.getpid():x}"
    workdir = Path(tempfile.mkdtemp(prefix="pqhbench-"))
    procs = Processes()
    redis_client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    lock = ensure_database(args.database_url)
    failed = False
    groups: dict[tuple[str, str, int], list] = {}
    raw: dict[str, Any] = {}
    try:
        prep = workdir / "prepare.json"
        prep.write_text(
            json.dumps({"users": users_needed(configs), "teams": teams_needed(configs)})
        )
        run_child(
            procs,
            "prepare",
            ["--child-prepare", str(prep)],
            base_env(args),
            workdir / "prepare.log",
        )
        for n, cfg in enumerate(configs, 1):
            t = time.monotonic()
            try:
                out = run_one(cfg, args, procs, workdir, redis_client, run_id)
                res = analyse(cfg, out)
            except Exception as exc:  # one broken run must not lose the others
                failed = True
                out, res = {"rows": [], "marks": {}}, {"error": str(exc)}
            print(
                f"[{n}/{len(configs)}] {cfg.slug}: {time.monotonic() - t:.1f} s"
                + (f"  ERROR {res['error'][:2000]}" if "error" in res else ""),
                flush=True,
            )
            groups.setdefault((cfg.scenario, cfg.variant, cfg.workers), []).append((cfg, out, res))
            if args.raw:
                raw[cfg.slug] = out
    finally:
        procs.stop_all()
        lock.close()
        if args.keep_logs or failed:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return groups, raw, failed
