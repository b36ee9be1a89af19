"""Fairness benchmark: scenarios S1-S6b (described in docs/fairness.md) on the real stack.

Every scenario runs side by side in one invocation: the FIFO baseline (PQH_FAIRNESS=0, every
task at level 0, published straight to Celery) and the fairness policy under one or both
charges (PQH_CHARGE=tasks: every task costs 1; PQH_CHARGE=time: a task costs the seconds it
spent in the work callable). S3 also runs the policy without aging, "strict". Each run
(scenario, mode, charge, W) gets its own Celery worker with `-c W`, its own submitting child
process (this file with --child) that calls `tasks_app.services.task_submit` after
`django.setup()`, and its own Redis prefix; times come from the TaskRecord rows (submitted_at,
started_at, finished_at) and from the work's own result (when the work callable ran).

S6 and S6b have tasks of different lengths: their worker runs bench.workload.sleep_for, which
sleeps the seconds each submission carries.

    .venv/bin/python bench/fairness.py            # the default run (about 10 minutes)
    .venv/bin/python bench/fairness.py --quick    # a smoke run (about a minute)

Writes bench/results/fairness.json, one timeline PNG per scenario and W and, for S6 and S6b, a
plot of every user's normalised service over time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # pqh's packages and bench.harness

from bench.harness import Processes, clean_environ, relative, run_meta, tail  # noqa: E402
from fairqueue.stats import jain_index, percentile  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_bench"
SCENARIOS = ("S1", "S2", "S3", "S4", "S5", "S6", "S6B")
TITLES = {
    "S1": "hog backlog, then newcomers n1..n5 submit one task each",
    "S2": "users backlogged at once with different weights",
    "S3": "hog backlog, then a steady stream of fresh users",
    "S4": "one user submits far more than the capacity",
    "S5": "idle service, single submissions spaced apart",
    "S6": "two users on one level: 1.0 s tasks at weight 1, 0.1 s tasks at weight 2",
    "S6B": "three users on one level, exponential task lengths (means 10x apart), weights 1, 2, 4",
}
CHARGES = ("tasks", "time")
# Which charges the policy runs under when --charge is "auto" (the default): the scenarios whose
# tasks all take d run under time only (both charges must give the same figures there), the
# ones that compare shares show both side by side.
AUTO_CHARGES = {
    "S1": ("time",),
    "S2": ("tasks", "time"),
    "S3": ("time",),
    "S4": ("time",),
    "S5": ("time",),
    "S6": ("tasks", "time"),
    "S6B": ("tasks", "time"),
}
WORKLOAD_CALLABLE = "bench.workload.sleep_for"
MODE_LABELS = {
    "fifo": "FIFO baseline (PQH_FAIRNESS=0)",
    "policy-tasks": "fairness policy, PQH_CHARGE=tasks",
    "policy-time": "fairness policy, PQH_CHARGE=time",
    "strict-tasks": "policy without aging, PQH_CHARGE=tasks",
    "strict-time": "policy without aging, PQH_CHARGE=time",
}
# Variables the benchmark sets or clears for the processes it starts, so nothing leaks in from
# the caller's environment (pytest sets several PQH_* of its own).


# ------------------------------------------------------------------------------------------
# Configuration of one run: a scenario, a mode and a worker count.
# ------------------------------------------------------------------------------------------


@dataclass
class RunConfig:
    scenario: str
    variant: str  # "" or, for S2, the weights "1:3"
    mode: str  # "fifo", "policy-tasks", "policy-time", "strict-…" (S3: no aging)
    workers: int
    d: float
    env: dict[str, str]  # PQH_* for the worker and the submitter
    plan: dict[str, Any]  # what the submitting child does
    expected_seconds: float  # rough duration if the service kept every slot busy
    classes: list[str] = field(default_factory=list)  # contending classes, for shares

    @property
    def slug(self) -> str:
        variant = f"_{self.variant.replace(':', '-')}" if self.variant else ""
        return f"{self.scenario.lower()}{variant}_{self.mode}_w{self.workers}"


def parse_weights(text: str) -> list[int]:
    weights = [int(w) for w in text.split(":")]
    if len(weights) < 2 or min(weights) < 1:
        raise argparse.ArgumentTypeError(f"weights must be like 1:3 or 1:2:5, got {text!r}")
    return weights


def build_configs(args: argparse.Namespace) -> list[RunConfig]:
    """Every run of the invocation, in order: per scenario, per W, FIFO first."""
    d = args.d
    configs: list[RunConfig] = []
    # The scenarios measure order, not admission: no per-user cap or global bound applies.
    base = {
        "PQH_TASK_SECONDS": repr(d),
        "PQH_USER_MAX_ACTIVE": "1000000",
        "PQH_MAX_QUEUED": "10000000",
    }
    if args.release_buffer is not None:
        base["PQH_RELEASE_BUFFER"] = str(args.release_buffer)

    def modes(extra_policy: dict[str, str] | None = None, strict: bool = False):
        """FIFO, then the policy under each charge, then (S3) the policy without aging."""
        charges = charges_for(args, scenario)
        out = [("fifo", {"PQH_FAIRNESS": "0"})]
        for charge in charges:
            env = {"PQH_FAIRNESS": "1", "PQH_CHARGE": charge, **(extra_policy or {})}
            out.append((f"policy-{charge}", env))
        if strict:
            for charge in charges:
                env = {"PQH_FAIRNESS": "1", "PQH_CHARGE": charge}
                out.append((f"strict-{charge}", {**env, "PQH_MAX_WAIT_SECONDS": "1000000"}))
        return out

    for scenario in args.scenarios:
        if scenario in ("S6", "S6B"):
            # Both users (all three in S6b) stay at one level: only the order within a level
            # is measured. The work's length comes from each submission (bench.workload);
            # PQH_TASK_SECONDS (d) is the estimate charged for a user with no history yet.
            w = args.s6_workers
            plan = s6_plan(args) if scenario == "S6" else s6b_plan(args)
            work = sum(sum(u[2]) for u in plan["users"])
            env = {
                "PQH_LEVEL_BOUNDS": "1000000",
                "PQH_TASK_CALLABLE": WORKLOAD_CALLABLE,
                "PQH_USER_MAX_ACTIVE": "1000000",
            }
            # The policy runs only: FIFO is not what S6 asks about (S2 shows it).
            for mode, menv in modes()[1:]:
                configs.append(
                    RunConfig(
                        scenario, "", mode, w, d, {**base, **env, **menv}, plan, work / w,
                        [u[3] for u in plan["users"]],
                    )
                )  # fmt: skip
            continue
        for w in args.workers:
            if scenario == "S1":
                backlog = max(w + 1, round(args.s1_backlog * w))
                plan = {
                    "hog": "bench_hog",
                    "backlog": backlog,
                    "newcomers": [f"bench_n{i}" for i in range(1, args.newcomers + 1)],
                    "delay": args.s1_delay * d,
                }
                expected = (backlog + args.newcomers) * d / w + args.s1_delay * d
                for mode, env in modes():
                    configs.append(
                        RunConfig(
                            "S1", "", mode, w, d, {**base, **env}, plan, expected,
                            ["hog", "newcomer"],
                        )
                    )  # fmt: skip
            elif scenario == "S2":
                for weights in args.s2_weights:
                    total = max(len(weights) * 2, round(args.s2_backlog * w))
                    users = []
                    for i, weight in enumerate(weights):
                        n = max(2, round(total * weight / sum(weights)))
                        users.append(
                            [f"bench_s2_u{i + 1}_w{weight}", weight, n, f"u{i + 1}_w{weight}"]
                        )
                    plan = {"users": users, "history": args.s2_history}
                    expected = sum(u[2] for u in users) * d / w
                    bounds = {}
                    if args.s2_level_bounds != "default":
                        bounds = {"PQH_LEVEL_BOUNDS": args.s2_level_bounds}
                    for mode, env in modes(bounds):
                        configs.append(
                            RunConfig(
                                "S2", ":".join(map(str, weights)), mode, w, d,
                                {**base, **env}, plan, expected, [u[3] for u in users],
                            )
                        )  # fmt: skip
            elif scenario == "S3":
                backlog = max(w + 1, round(args.s3_backlog * w))
                interval = d / (w * args.s3_load)
                fresh = max(1, round(args.s3_stream * d / interval))
                plan = {
                    "hog": "bench_hog",
                    "backlog": backlog,
                    "fresh": [fresh_name(i) for i in range(fresh)],
                    "interval": interval,
                    "bound_s": args.s3_max_wait * d,
                }
                expected = max(fresh * interval, (backlog + fresh) * d / w)
                aging = {"PQH_MAX_WAIT_SECONDS": repr(args.s3_max_wait * d)}
                for mode, env in modes(aging, strict=args.s3_strict):
                    configs.append(
                        RunConfig(
                            "S3", "", mode, w, d, {**base, **env}, plan, expected,
                            ["hog", "fresh"],
                        )
                    )  # fmt: skip
            elif scenario == "S4":
                n = max(2 * w, round(args.s4_backlog * w))
                plan = {"user": "bench_solo", "n": n}
                for mode, env in modes():
                    configs.append(
                        RunConfig("S4", "", mode, w, d, {**base, **env}, plan, n * d / w, ["solo"])
                    )
            elif scenario == "S5":
                gap = args.s5_gap if args.s5_gap is not None else d + 0.15
                plan = {"user": "bench_single", "n": args.s5_count, "gap": gap, "warmup": w}
                expected = args.s5_count * gap + 2 * d
                for mode, env in modes():
                    configs.append(
                        RunConfig("S5", "", mode, w, d, {**base, **env}, plan, expected, [])
                    )
    return configs


def charges_for(args: argparse.Namespace, scenario: str) -> tuple[str, ...]:
    """The charges the policy runs under in `scenario`."""
    if args.charge == "auto":
        return AUTO_CHARGES[scenario]
    return tuple(args.charge)


def s6_plan(args: argparse.Namespace) -> dict[str, Any]:
    """S6: "long" (weight 1) and "short" (weight 2), every task's length fixed."""
    return {
        "users": [
            ["bench_s6_long", 1, [args.s6_long_seconds] * args.s6_long_tasks, "long"],
            ["bench_s6_short", 2, [args.s6_short_seconds] * args.s6_short_tasks, "short"],
        ]
    }


def s6b_plan(args: argparse.Namespace) -> dict[str, Any]:
    """S6b: one user per (weight, mean); lengths drawn from an exponential distribution.

    Each user gets work in proportion to its weight (weight / sum of weights of W x
    --s6b-seconds), so that under time charging all of them stay backlogged for about
    --s6b-seconds. The draws are seeded (--s6b-seed): every run, both charges included, submits
    the same lengths.
    """
    import random

    weights, means = args.s6b_weights, args.s6b_means
    users = []
    for i, (weight, mean) in enumerate(zip(weights, means, strict=True)):
        rng = random.Random(f"{args.s6b_seed}-{i}")
        target = weight / sum(weights) * args.s6_workers * args.s6b_seconds
        lengths: list[float] = []
        while sum(lengths) < target:
            lengths.append(round(rng.expovariate(1 / mean), 4))
        users.append([f"bench_s6b_u{i + 1}_w{weight}", weight, lengths, f"u{i + 1}_w{weight}"])
    return {"users": users, "means": means, "seed": args.s6b_seed}


def users_summary(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's users for the JSON, task lengths summarised (S6b has a thousand of them)."""
    if "users" not in plan:
        return {}
    out = []
    for name, weight, n, label in plan["users"]:
        if isinstance(n, list):
            n = {"tasks": len(n), "work_s": round(sum(n), 3), "longest_s": max(n, default=0)}
        out.append([name, weight, n, label])
    return {"users": out}


def fresh_name(i: int) -> str:
    return f"bench_fresh_{i:04d}"


def users_needed(configs: list[RunConfig]) -> dict[str, int]:
    """Every user any run submits as, with its weight."""
    users: dict[str, int] = {}
    for cfg in configs:
        plan = cfg.plan
        for name in (plan.get("hog"), plan.get("user")):
            if name:
                users[name] = 1
        for name in plan.get("newcomers", []) + plan.get("fresh", []):
            users[name] = 1
        for name, weight, _n, _label in plan.get("users", []):
            users[name] = weight
    return users


# ------------------------------------------------------------------------------------------
# The child side: Django is set up here, once per run, with the run's settings in the env.
# ------------------------------------------------------------------------------------------


def _django():
    import django

    django.setup()


def child_prepare(spec: dict[str, Any]) -> None:
    """Migrate the benchmark database, empty its task tables and create the users."""
    _django()
    from django.core.management import call_command
    from django_celery_results.models import TaskResult

    from tasks_app.models import TaskRecord
    from users_app.services import api_user_create

    call_command("migrate", verbosity=0, interactive=False)
    # The bench database is scratch space (the orchestrator holds a lock on it): rows a killed
    # run left PENDING would otherwise be picked up by a worker's recovery sweep.
    TaskRecord.objects.all().delete()
    TaskResult.objects.all().delete()
    for name, weight in spec["users"].items():
        api_user_create(username=name, weight=weight)


def child_run(spec: dict[str, Any]) -> None:
    """Wait for the go, submit the run's tasks, wait until they end, write their rows."""
    _django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django_celery_results.models import TaskResult

    from tasks_app.models import TaskRecord
    from tasks_app.services import task_submit

    workdir = Path(spec["workdir"])
    tag, plan, scenario = spec["tag"], spec["plan"], spec["scenario"]
    users = {
        u.username: u
        for u in get_user_model()
        .objects.select_related("profile")
        .filter(username__in=spec["usernames"])
    }
    for user in users.values():
        user.profile  # noqa: B018 - load the weight now, not during the timed submissions
    submit_ms: dict[str, float] = {}

    def submit(username: str, cls: str, i: int, seconds: float | None = None) -> None:
        x = {"run": tag, "cls": cls, "i": i}
        if seconds is not None:
            x["seconds"] = seconds  # bench.workload.sleep_for sleeps this long
        t = time.perf_counter()
        record = task_submit(user=users[username], x=x)
        submit_ms[str(record.pk)] = (time.perf_counter() - t) * 1000

    def sleep_until(deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    if scenario == "S2" and plan.get("history"):
        # Give every user a window history of 36 x weight submissions, so that all of them
        # are at level 5 under the default bounds: what weights buy within one level.
        # Under PQH_CHARGE=time each is charged d seconds (what a run of limited_f takes), one
        # more per user so that a float sum of 36 x weight x d cannot fall just short of the
        # level-5 bound of 36 x d seconds per weight.
        from tasks_app.redis_client import get_redis, key
        from tasks_app.window import window_record

        timed = getattr(settings, "PQH_CHARGE", "tasks") == "time"
        for name, weight, _n, _label in plan["users"]:
            uid = users[name].pk
            for i in range(36 * weight + (1 if timed else 0)):
                window_record(user_id=uid, member=f"history-{tag}-{i}")
                if timed:
                    pipe = get_redis().pipeline(transaction=True)
                    pipe.hset(key("wc", uid), f"history-{tag}-{i}", repr(spec["d"]))
                    pipe.hincrbyfloat(key("wc", uid), "sum", spec["d"])
                    pipe.pexpire(key("wc", uid), settings.PQH_WINDOW_SECONDS * 1000)
                    pipe.execute()

    (workdir / "ready").write_text("")
    go = workdir / "go"
    while not go.exists():
        time.sleep(0.005)

    t_go = time.time()
    marks: dict[str, float] = {}
    if scenario == "S1":
        for i in range(plan["backlog"]):
            submit(plan["hog"], "hog", i)
        time.sleep(plan["delay"])
        marks["newcomers_arrive"] = time.time()
        for i, name in enumerate(plan["newcomers"]):
            submit(name, "newcomer", i)
    elif scenario == "S2":
        longest = max(n for _name, _w, n, _label in plan["users"])
        for i in range(longest):  # round robin: every user submits at the same rate
            for name, _weight, n, label in plan["users"]:
                if i < n:
                    submit(name, label, i)
    elif scenario in ("S6", "S6B"):
        # Everything at once, interleaved so that every user's submissions are spread over the
        # same second or so (user k's i-th task goes at fraction i / n_k of the sequence):
        # all users are backlogged from the start.
        order = sorted(
            (i / len(lengths), k, i)
            for k, (_name, _w, lengths, _label) in enumerate(plan["users"])
            for i in range(len(lengths))
        )
        for _frac, k, i in order:
            name, _weight, lengths, label = plan["users"][k]
            submit(name, label, i, lengths[i])
    elif scenario == "S3":
        for i in range(plan["backlog"]):
            submit(plan["hog"], "hog", i)
        start = time.monotonic()
        marks["stream_start"] = time.time()
        for i, name in enumerate(plan["fresh"]):
            sleep_until(start + i * plan["interval"])
            submit(name, "fresh", i)
        marks["stream_end"] = time.time()
    elif scenario == "S4":
        for i in range(plan["n"]):
            submit(plan["user"], "solo", i)
    elif scenario == "S5":
        # Warm every pool process (its first task opens a database connection), then idle.
        for i in range(plan["warmup"]):
            submit(plan["user"], "warmup", i)
        time.sleep(spec["d"] + plan["gap"])
        start = time.monotonic()
        for i in range(plan["n"]):
            sleep_until(start + i * plan["gap"])
            submit(plan["user"], "single", i)
    marks["submitted"] = time.time()

    mine = TaskRecord.objects.filter(input__run=tag)
    deadline = time.monotonic() + spec["timeout"]
    timed_out = False
    while mine.filter(finished_at__isnull=True).exists():
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(0.05)

    def ts(value):
        return value.timestamp() if value is not None else None

    # When the work callable ran: both limited_f and bench.workload.sleep_for return their
    # start and end (time.time()) in the stored result.
    work: dict[str, tuple[float | None, float | None]] = {}
    for task_id, stored in TaskResult.objects.filter(
        task_id__in=[str(pk) for pk in mine.values_list("pk", flat=True)]
    ).values_list("task_id", "result"):
        try:
            value = json.loads(stored) if stored else None
        except ValueError:
            value = None
        if isinstance(value, dict):
            work[str(task_id)] = (value.get("init_timestamp"), value.get("done_timestamp"))

    def opt(record, name):
        """A TaskRecord field that only the time-charging queue has (None before it)."""
        value = getattr(record, name, None)
        return value if value is None or isinstance(value, str) else float(value)

    rows = [
        {
            "task_id": str(r.pk),
            "user": r.user.username,
            "cls": r.input["cls"],
            "i": r.input["i"],
            "level": r.level,
            "weight": r.weight,
            "count_before": r.count_before,
            "aged": r.aged,
            "status": r.status,
            "submitted": ts(r.submitted_at),
            "started": ts(r.started_at),
            "finished": ts(r.finished_at),
            "submit_ms": submit_ms.get(str(r.pk)),
            "asked_s": r.input.get("seconds"),
            "work_start": work.get(str(r.pk), (None, None))[0],
            "work_end": work.get(str(r.pk), (None, None))[1],
            "charge": opt(r, "charge"),
            "usage_before": opt(r, "usage_before"),
            "cost": opt(r, "cost"),
            "run_seconds": opt(r, "run_seconds"),
        }
        for r in mine.select_related("user").order_by("submitted_at")
    ]
    effective = {
        name: getattr(settings, name, None)
        for name in (
            "PQH_REDIS_PREFIX",
            "PQH_FAIRNESS",
            "PQH_CHARGE",
            "PQH_LEVEL_BOUNDS_SECONDS",
            "PQH_TASK_SECONDS",
            "PQH_TASK_CALLABLE",
            "PQH_LEVEL_BOUNDS",
            "PQH_WINDOW_SECONDS",
            "PQH_MAX_WAIT_SECONDS",
            "PQH_RELEASE_BUFFER",
            "PQH_RELEASE_TICK_SECONDS",
        )
    }
    out = {"rows": rows, "timed_out": timed_out, "t_go": t_go, "marks": marks}
    out["settings"] = effective
    (workdir / "rows.json").write_text(json.dumps(out))
    ids = [row["task_id"] for row in rows]
    TaskResult.objects.filter(task_id__in=ids).delete()
    mine.delete()


# ------------------------------------------------------------------------------------------
# The orchestrator: database, Redis keys, processes.
# ------------------------------------------------------------------------------------------


def base_env(args: argparse.Namespace) -> dict[str, str]:
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
    proc = procs.start(
        name, [sys.executable, str(Path(__file__).resolve()), *cmd_args], env=env, log=log
    )
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
            [sys.executable, str(Path(__file__).resolve()), "--child", str(rundir / "spec.json")],
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


# ------------------------------------------------------------------------------------------
# Analysis
# ------------------------------------------------------------------------------------------

DT = 0.001  # the time grid for utilisation and shares: 1 ms


def percentiles(values: list[float], scale: float) -> dict[str, Any]:
    """p50, p99, max and mean of `values` divided by `scale` (rounded to 3 decimals)."""
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None, "mean": None}
    scaled = [v / scale for v in values]
    return {
        "n": len(values),
        "p50": round(percentile(scaled, 50), 3),
        "p99": round(percentile(scaled, 99), 3),
        "max": round(max(scaled), 3),
        "mean": round(sum(scaled) / len(scaled), 3),
    }


class Grid:
    """Counts over time on a 1 ms grid: tasks waiting (submitted, not started) and running."""

    def __init__(self, rows: list[dict[str, Any]]):
        import numpy as np

        self.np = np
        self.t0 = min(r["submitted"] for r in rows)
        ends = [r["finished"] or r["started"] or r["submitted"] for r in rows]
        self.t1 = max(ends)
        self.n = int(math.ceil((self.t1 - self.t0) / DT)) + 2

    def idx(self, t: float) -> int:
        return min(self.n - 1, max(0, int(round((t - self.t0) / DT))))

    def count(self, intervals: list[tuple[float, float]]):
        arr = self.np.zeros(self.n + 1, dtype=self.np.int32)
        for a, b in intervals:
            i, j = self.idx(a), self.idx(b)
            if j > i:
                arr[i] += 1
                arr[j] -= 1
        return self.np.cumsum(arr)[: self.n]

    def waiting(self, rows):
        return self.count([(r["submitted"], r["started"] or self.t1) for r in rows])

    def running(self, rows):
        return self.count([(r["started"], r["finished"] or self.t1) for r in rows if r["started"]])

    def working(self, rows):
        """Tasks inside the work callable (its own start and end, from the stored result)."""
        return self.count([(r["work_start"], r["work_end"]) for r in rows if has_work(r)])


def has_work(r: dict[str, Any]) -> bool:
    return r.get("work_start") is not None and r.get("work_end") is not None


def lanes(rows: list[dict[str, Any]], eps: float = 0.002) -> dict[str, int]:
    """Give every started task a slot lane, as a reconstruction: TaskRecord names the worker,
    not its pool process. A slot runs one task at a time; a task goes to the slot that freed
    last before it started (the process that just finished is the one that takes it)."""
    ends: list[float] = []
    out: dict[str, int] = {}
    for r in sorted((r for r in rows if r["started"]), key=lambda r: r["started"]):
        end = r["finished"] or r["started"]
        free = [lane for lane, lane_end in enumerate(ends) if lane_end <= r["started"] + eps]
        if free:
            lane = max(free, key=lambda lane: ends[lane])
            ends[lane] = end
        else:
            ends.append(end)
            lane = len(ends) - 1
        out[r["task_id"]] = lane
    return out


def analyse(cfg: RunConfig, out: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    d, w = cfg.d, cfg.workers
    rows = [r for r in out["rows"] if r["cls"] != "warmup"]
    started = [r for r in rows if r["started"]]
    res: dict[str, Any] = {
        "tasks": len(rows),
        "finished": sum(1 for r in rows if r["finished"]),
        "timed_out": out["timed_out"],
        "settings": out["settings"],
        "worker_log_errors": out["worker_log_errors"],
    }
    if not rows:
        return res
    grid = Grid(rows)
    t0 = grid.t0
    res["elapsed_s"] = round(grid.t1 - t0, 3)
    res["levels"] = {str(k): v for k, v in sorted(count_by(rows, "level").items())}
    res["aged"] = sum(1 for r in rows if r["aged"])

    # Waits per class, in units of d.
    classes = sorted({r["cls"] for r in rows}, key=lambda c: (c != "hog", c))
    waits = {c: [r["started"] - r["submitted"] for r in started if r["cls"] == c] for c in classes}
    res["wait_d"] = {c: percentiles(v, d) for c, v in waits.items()}
    never = [r for r in rows if not r["started"]]
    if never:
        res["never_started"] = len(never)

    # Utilisation: busy slots / W while at least one task waits.
    waiting = grid.waiting(rows)
    running = grid.running(rows)
    queued = waiting > 0
    if queued.any():
        res["utilisation"] = round(
            float(np.minimum(running[queued], w).sum() / (w * queued.sum())), 4
        )
    else:
        res["utilisation"] = None
    res["queued_s"] = round(float(queued.sum() * DT), 3)
    busy = sum((r["finished"] - r["started"]) for r in rows if r["finished"] and r["started"])
    span = grid.t1 - min(r["started"] for r in started) if started else 0
    res["utilisation_span"] = round(busy / (w * span), 4) if span > 0 else None
    done = [r for r in rows if r["finished"] and r["started"]]
    if done:
        res["slot_time_per_task_ms"] = round(
            1000 * float(np.mean([r["finished"] - r["started"] for r in done])), 2
        )
    submit_ms = [r["submit_ms"] for r in rows if r["submit_ms"] is not None]
    if submit_ms:
        res["submit_call_ms"] = percentiles(submit_ms, 1.0)

    # Share of service per class over the contention period (every class has a task waiting).
    if len(cfg.classes) >= 1:
        by_class = {c: [r for r in rows if r["cls"] == c] for c in cfg.classes}
        mask = np.ones(grid.n, dtype=bool)
        for c in cfg.classes:
            mask &= grid.waiting(by_class[c]) > 0
        run_c = {c: grid.running(by_class[c]) for c in cfg.classes}
        total = sum(float(run_c[c][mask].sum()) for c in cfg.classes)
        res["contention_s"] = round(float(mask.sum() * DT), 3)
        if total > 0:
            res["share"] = {c: round(float(run_c[c][mask].sum()) / total, 4) for c in cfg.classes}
        else:
            res["share"] = None
        # The same over time, in bins of 10 d, while anything waits (for the share-over-time view).
        bin_n = max(1, int(round(10 * d / DT)))
        series = []
        for start in range(0, grid.n, bin_n):
            sl = slice(start, start + bin_n)
            tot = sum(float(run_c[c][sl].sum()) for c in cfg.classes)
            if tot > 0 and queued[sl].any():
                series.append(
                    [round(start * DT, 2)]
                    + [round(float(run_c[c][sl].sum()) / tot, 3) for c in cfg.classes]
                )
        res["share_over_time"] = {"bin_s": round(bin_n * DT, 3), "columns": ["t_s", *cfg.classes]}
        res["share_over_time"]["rows"] = series
        # The same share counted in the time spent inside the work callable (what
        # PQH_CHARGE=time charges), without the claim and bookkeeping around it.
        work_c = {c: grid.working(by_class[c]) for c in cfg.classes}
        total_work = sum(float(work_c[c][mask].sum()) for c in cfg.classes)
        if total_work > 0 and all(has_work(r) for r in rows if r["finished"]):
            res["share_work"] = {
                c: round(float(work_c[c][mask].sum()) / total_work, 4) for c in cfg.classes
            }
            res["work_s"] = {c: round(float(work_c[c][mask].sum()) * DT, 3) for c in cfg.classes}
        else:
            res["share_work"] = None
        if cfg.scenario in ("S6", "S6B"):
            res.update(service_gap(cfg, grid, mask, work_c, rows, out["settings"]))

    extra = SCENARIO_EXTRAS[cfg.scenario](cfg, out, rows, res)
    res.update(extra)
    return res


def count_by(rows, key):
    counts: dict[Any, int] = {}
    for r in rows:
        counts[r[key]] = counts.get(r[key], 0) + 1
    return counts


def extras_s1(cfg, out, rows, res):
    d, w = cfg.d, cfg.workers
    arrive = out["marks"]["newcomers_arrive"]
    newcomers = sorted((r for r in rows if r["cls"] == "newcomer"), key=lambda r: r["i"])
    hogs = [r for r in rows if r["cls"] == "hog"]
    pending = [h for h in hogs if not h["started"] or h["started"] > arrive]
    # A hog task that had not started when a newcomer arrived, yet started before it.
    overtakes = sum(
        1
        for n in newcomers
        for h in hogs
        if n["started"]
        and h["started"]
        and h["started"] > n["submitted"]
        and h["started"] < n["started"]
    )
    return {
        "newcomer_wait_d": [
            round((n["started"] - n["submitted"]) / d, 3) if n["started"] else None
            for n in newcomers
        ],
        # k-th newcomer: the residual of a running task plus (k-1) d / W; at most 1 + (k-1)/W.
        "ideal_newcomer_wait_d": [round(1 + k / w, 3) for k in range(len(newcomers))],
        "hog_waiting_at_arrival": len(pending),
        "fifo_expected_newcomer_wait_d": round(len(pending) / w, 2),
        "hog_overtakes": overtakes,
    }


def extras_s2(cfg, out, rows, res):
    weights = {label: weight for _name, weight, _n, label in cfg.plan["users"]}
    share = res.get("share") or {}
    extra: dict[str, Any] = {"weights": weights}
    if share and all(share.get(c) for c in weights):
        lightest = min(weights, key=lambda c: (weights[c], c))
        extra["share_ratio"] = {c: round(share[c] / share[lightest], 3) for c in weights}
        extra["weight_ratio"] = {c: round(weights[c] / weights[lightest], 3) for c in weights}
        extra["ideal_share"] = {c: round(weights[c] / sum(weights.values()), 4) for c in weights}
        extra["jain_share_per_weight"] = round(
            jain_index([share[c] / weights[c] for c in weights]), 4
        )
    else:
        extra["jain_share_per_weight"] = None
    return extra


def service_gap(cfg, grid, mask, work_c, rows, settings) -> dict[str, Any]:
    """How far apart the users' normalised service got while all were backlogged.

    - `max_gap_s`, `final_gap_s`: each user's normalised service is the seconds its tasks spent
      in the work callable during the contention period (running tasks count as they run),
      divided by its weight; the gap at an instant is the largest minus the smallest (the
      plotted lines), its maximum and its value when the period ends.
    - `pick_gap_s`, `k_seen`, `k_bound`, `bound_s`: the quantity of the bound in
      docs/fairness.md, |S_i/w_i - S_j/w_j| <= K (cmax/w_i + cmax/w_j), where S counts a task's
      whole cost (its measured seconds) when it starts, over any interval of the contention
      period, for every pair of users: `pick_gap_s` is the largest such difference,
      `k_seen` the largest difference divided by the pair's cmax/w_i + cmax/w_j, `cmax_s` the
      largest cost or estimate charged, `k_bound` the documented K under time charging
      (2 + 2R, R = W + PQH_RELEASE_BUFFER - 1 picked and unsettled tasks) and `bound_s` K times
      the largest pair term. Under PQH_CHARGE=tasks the bound is in tasks, not seconds: k_bound
      and bound_s are None there.
    """
    import numpy as np

    weights = {label: weight for _name, weight, _lengths, label in cfg.plan["users"]}
    norm = {c: np.cumsum(np.where(mask, work_c[c], 0)) * DT / weights[c] for c in cfg.classes}
    stack = np.vstack([norm[c] for c in cfg.classes])
    gap = (stack.max(axis=0) - stack.min(axis=0))[mask] if mask.any() else np.zeros(1)
    longest = {
        c: max(
            (r["work_end"] - r["work_start"] for r in rows if r["cls"] == c and has_work(r)),
            default=0.0,
        )
        for c in cfg.classes
    }
    estimates = [r["cost"] for r in rows if r.get("charge") == "time" and r.get("cost")]
    cmax = max([*longest.values(), *estimates])
    # Picked service: a task's whole cost / weight when it starts, if it starts in the period.
    picked = {}
    for c in cfg.classes:
        arr = np.zeros(grid.n)
        for r in rows:
            if r["cls"] == c and has_work(r):
                i = grid.idx(r["started"])
                if mask[i]:
                    arr[i] += (r["work_end"] - r["work_start"]) / weights[c]
        picked[c] = np.cumsum(arr)
    pick_gap, k_seen = 0.0, 0.0
    for a, b in itertools.combinations(cfg.classes, 2):
        diff = (picked[a] - picked[b])[mask] if mask.any() else np.zeros(1)
        g = float(diff.max() - diff.min())  # the worst interval: max minus min of the difference
        pick_gap = max(pick_gap, g)
        k_seen = max(k_seen, g / (cmax / weights[a] + cmax / weights[b]))
    timed = settings.get("PQH_CHARGE") == "time"
    k_bound = 2 + 2 * (cfg.workers + (settings.get("PQH_RELEASE_BUFFER") or 1) - 1)
    light = sorted(weights.values())[:2]
    return {
        "max_gap_s": round(float(gap.max()), 3),
        "final_gap_s": round(float(gap[-1]), 3),
        "longest_task_s": {c: round(v, 3) for c, v in longest.items()},
        "cmax_s": round(cmax, 3),
        "pick_gap_s": round(pick_gap, 3),
        "k_seen": round(k_seen, 3),
        "k_bound": k_bound if timed else None,
        "bound_s": round(k_bound * (cmax / light[0] + cmax / light[1]), 3) if timed else None,
    }


def extras_s6(cfg, out, rows, res):
    """S6/S6b: shares of worker time against the weights, and what the charge recorded."""
    weights = {label: weight for _name, weight, _lengths, label in cfg.plan["users"]}
    extra: dict[str, Any] = {
        "weights": weights,
        "ideal_share": {c: round(weights[c] / sum(weights.values()), 4) for c in weights},
        "tasks_per_user": {label: len(lengths) for _n, _w, lengths, label in cfg.plan["users"]},
        "work_asked_s": {
            label: round(sum(lengths), 3) for _n, _w, lengths, label in cfg.plan["users"]
        },
    }
    for key, share in (("work", res.get("share_work")), ("share", res.get("share"))):
        name = "jain_work_per_weight" if key == "work" else "jain_share_per_weight"
        if share and all(share.get(c) for c in weights):
            extra[name] = round(jain_index([share[c] / weights[c] for c in weights]), 4)
        else:
            extra[name] = None
    extra["charge_check"] = charge_check(rows)
    return extra


def charge_check(rows) -> dict[str, Any]:
    """What the TaskRecord rows say was charged, beside what the work took (time mode).

    `run_seconds` should be the seconds in the work callable of the run that finished: compare
    with the work's own start and end. `cost` is the estimate charged at admission.
    """
    done = [r for r in rows if r["finished"]]
    check: dict[str, Any] = {
        "charge": sorted({str(r.get("charge")) for r in rows}),
        "finished": len(done),
        "run_seconds_missing": sum(1 for r in done if r.get("run_seconds") is None),
    }
    diffs = [
        r["run_seconds"] - (r["work_end"] - r["work_start"])
        for r in done
        if r.get("run_seconds") is not None and has_work(r)
    ]
    if diffs:
        check["run_minus_work_ms"] = {
            "min": round(1000 * min(diffs), 2),
            "max": round(1000 * max(diffs), 2),
            "mean": round(1000 * sum(diffs) / len(diffs), 2),
        }
    per_class: dict[str, Any] = {}
    for c in sorted({r["cls"] for r in rows}):
        mine = [r for r in done if r["cls"] == c]
        costs = [r["cost"] for r in mine if r.get("cost") is not None]
        runs = [r["run_seconds"] for r in mine if r.get("run_seconds") is not None]
        per_class[c] = {
            "work_s": round(sum(r["work_end"] - r["work_start"] for r in mine if has_work(r)), 3),
            "run_seconds_sum": round(sum(runs), 3) if runs else None,
            "cost_mean": round(sum(costs) / len(costs), 4) if costs else None,
            "cost_first_last": [costs[0], costs[-1]] if costs else None,
        }
    check["per_class"] = per_class
    return check


def extras_s3(cfg, out, rows, res):
    d = cfg.d
    hogs = [r for r in rows if r["cls"] == "hog" and r["started"]]
    bound = cfg.plan["bound_s"]  # the policy's PQH_MAX_WAIT_SECONDS, shown beside every mode
    stream = out["marks"]["stream_end"] - out["marks"]["stream_start"]
    hog_max = max((r["started"] - r["submitted"] for r in hogs), default=None)
    return {
        "max_wait_bound_d": round(bound / d, 3),
        "aging": out["settings"]["PQH_FAIRNESS"] and out["settings"]["PQH_MAX_WAIT_SECONDS"] < 1e5,
        "stream_d": round(stream / d, 2),
        "hog_max_wait_d": round(hog_max / d, 3) if hog_max is not None else None,
        # Aged tasks are released oldest first, W at a time: the last of a backlog B that aged
        # together starts about B d / W after the bound.
        "aged_backlog_drain_d": round(cfg.plan["backlog"] / cfg.workers, 2),
        "hog_started_during_stream": sum(
            1 for r in hogs if r["started"] < out["marks"]["stream_end"]
        ),
    }


def extras_s4(cfg, out, rows, res):
    d, w = cfg.d, cfg.workers
    done = [r for r in rows if r["finished"]]
    extra: dict[str, Any] = {"target_utilisation": 0.95}
    if len(done) > 1:
        first = min(r["started"] for r in done)
        last = max(r["finished"] for r in done)
        extra["throughput_per_s"] = round(len(done) / (last - first), 3)
        extra["ideal_throughput_per_s"] = round(w / d, 3)
        # The fraction of slot time spent in the work itself (d per task), not in the overhead.
        extra["throughput_ratio"] = round(len(done) * d / (w * (last - first)), 4)
    # Idle gaps in a slot between one task's end and the next one's start.
    lane_of = lanes(rows)
    per_lane: dict[int, list] = {}
    for r in rows:
        if r["task_id"] in lane_of:
            per_lane.setdefault(lane_of[r["task_id"]], []).append(r)
    gaps = []
    for tasks in per_lane.values():
        tasks.sort(key=lambda r: r["started"])
        gaps += [(b["started"] - a["finished"]) * 1000 for a, b in itertools.pairwise(tasks)]
    if gaps:
        extra["slot_gap_ms"] = percentiles(gaps, 1.0)
    return extra


def extras_s5(cfg, out, rows, res):
    lat = [(r["started"] - r["submitted"]) * 1000 for r in rows if r["started"]]
    return {"latency_ms": percentiles(lat, 1.0), "target_p50_ms": 10}


SCENARIO_EXTRAS = {
    "S1": extras_s1,
    "S2": extras_s2,
    "S3": extras_s3,
    "S4": extras_s4,
    "S5": extras_s5,
    "S6": extras_s6,
    "S6B": extras_s6,
}


# ------------------------------------------------------------------------------------------
# Timelines
# ------------------------------------------------------------------------------------------


def plot(group: list[tuple[RunConfig, dict[str, Any], dict[str, Any]]], path: Path) -> None:
    """One panel per mode: which user's task ran in which slot lane, over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    cfg0 = group[0][0]
    w, d = cfg0.workers, cfg0.d
    users = []
    for _cfg, out, _res in group:
        for r in out["rows"]:
            if r["user"] not in users and r["cls"] != "warmup":
                users.append(r["user"])
    special = {"bench_hog": "#d62728"}
    palette = [plt.get_cmap("tab10")(i) for i in (0, 2, 1, 4, 5, 6, 8, 9, 7)]
    many = len(users) > 10
    # tab20 without its two reds, which stay the hog's.
    many_palette = [plt.get_cmap("tab20")(i) for i in range(20) if i not in (6, 7)]
    colour = {}
    k = 0
    for u in users:
        if u in special:
            colour[u] = special[u]
        else:
            colour[u] = palette[k % len(palette)] if not many else many_palette[k % 18]
            k += 1
    fig, axes = plt.subplots(
        len(group), 1, figsize=(13, 1.3 + len(group) * (0.9 + 0.45 * w)), sharex=True, squeeze=False
    )
    for ax, (cfg, out, res) in zip(axes[:, 0], group, strict=True):
        rows = [r for r in out["rows"] if r["cls"] != "warmup"]
        if not rows:
            continue
        t0 = min(r["submitted"] for r in rows)
        lane_of = lanes(rows)
        n_lanes = max([w, *[v + 1 for v in lane_of.values()]])
        for r in rows:
            if r["task_id"] not in lane_of:
                continue
            lane = lane_of[r["task_id"]]
            start = r["started"] - t0
            length = (r["finished"] or r["started"] + d) - r["started"]
            ax.broken_barh(
                [(start, length)],
                (lane + 0.1, 0.8),
                facecolors=colour[r["user"]],
                edgecolors="black" if r["aged"] else "white",
                linewidth=1.2 if r["aged"] else 0.4,
                hatch="//" if r["aged"] else None,
            )
        for name, t in out["marks"].items():
            if name in ("newcomers_arrive", "stream_start", "stream_end"):
                ax.axvline(t - t0, color="black", linestyle="--", linewidth=0.8)
                ax.text(t - t0, n_lanes + 0.05, name.replace("_", " "), fontsize=7, va="bottom")
        ax.set_ylim(0, n_lanes + 0.45)
        ax.set_yticks([i + 0.5 for i in range(n_lanes)], [f"slot {i + 1}" for i in range(n_lanes)])
        label = MODE_LABELS[cfg.mode]
        util = res.get("utilisation")
        util_text = f", utilisation {util:.3f}" if util is not None else ""
        ax.set_title(f"{label}{util_text}", fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(f"seconds since the first submission (d = {d} s, W = {w})")
    if many:
        handles = [Patch(color=special["bench_hog"], label="hog")] if "bench_hog" in users else []
        handles.append(Patch(color=plt.get_cmap("tab20")(0), label="fresh users (one colour each)"))
    else:
        handles = [Patch(color=colour[u], label=u.removeprefix("bench_")) for u in users]
    if any(r["aged"] for _c, out, _r in group for r in out["rows"]):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="aged"))
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=min(len(handles), 6))
    variant = f" weights {cfg0.variant}" if cfg0.variant else ""
    fig.suptitle(
        f"{cfg0.scenario}{variant}: {TITLES[cfg0.scenario]}", x=0.01, ha="left", fontsize=11
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_service(group: list[tuple[RunConfig, dict[str, Any], dict[str, Any]]], path: Path) -> None:
    """S6/S6b: each user's cumulative normalised service (work seconds / weight) over time.

    One panel per charge, the same axes. The shaded span is the contention period (every user
    has a task waiting); under fair sharing by time the lines rise together there.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cfg0 = group[0][0]
    weights = {label: weight for _name, weight, _lengths, label in cfg0.plan["users"]}
    colours = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(weights)}
    fig, axes = plt.subplots(
        1, len(group), figsize=(6.2 * len(group), 4.6), sharey=True, squeeze=False
    )
    for ax, (cfg, out, res) in zip(axes[0], group, strict=True):
        rows = out["rows"]
        if not rows:
            continue
        t0 = min(r["submitted"] for r in rows)
        for c, weight in weights.items():
            mine = sorted((r for r in rows if r["cls"] == c and has_work(r)),
                          key=lambda r: r["work_start"])  # fmt: skip
            # Service accrues while a task runs: a piecewise-linear curve through its events.
            events = sorted(
                [(r["work_start"] - t0, 1) for r in mine] + [(r["work_end"] - t0, -1) for r in mine]
            )
            ts, ys, running, acc, last = [0.0], [0.0], 0, 0.0, 0.0
            for t, step in events:
                acc += running * (t - last) / weight
                ts.append(t)
                ys.append(acc)
                running += step
                last = t
            share = (res.get("share_work") or {}).get(c)
            label = f"{c} (weight {weight}, {len(mine)} tasks"
            label += f", share {share:.3f})" if share is not None else ")"
            ax.plot(ts, ys, color=colours[c], linewidth=1.6, label=label)
        # The contention period: every user has a task waiting.
        grid = Grid(rows)
        mask = np.ones(grid.n, dtype=bool)
        for c in weights:
            mask &= grid.waiting([r for r in rows if r["cls"] == c]) > 0
        if mask.any():
            idx = np.flatnonzero(mask)
            ax.axvspan(idx[0] * DT, idx[-1] * DT, color="grey", alpha=0.12, lw=0)
            ax.text(idx[-1] * DT, 0, " contention ends", fontsize=7, va="bottom")
        jw = res.get("jain_work_per_weight")
        title = MODE_LABELS[cfg.mode]
        if jw is not None:
            title += f"\nweighted Jain {jw:.3f}, max gap {res.get('max_gap_s', 0):.2f} s"
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("seconds since the first submission")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[0, 0].set_ylabel("normalised service: work seconds / weight")
    fig.suptitle(
        f"{cfg0.scenario}: {TITLES[cfg0.scenario]} (W = {cfg0.workers})",
        x=0.01, ha="left", fontsize=10,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def summary_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for scenario, data in results["scenarios"].items():
        lines.append(f"\n{scenario}: {TITLES[scenario]}")
        for run in data["runs"]:
            variant = f" weights {run['variant']}" if run["variant"] else ""
            lines.append(f"  W={run['W']}{variant}  ({run.get('png') or 'no png'})")
            for mode, res in run["modes"].items():
                if "error" in res:
                    lines.append(f"    {mode:12s} ERROR {res['error'].splitlines()[0]}")
                    continue
                waits = "  ".join(
                    f"{c}: {fmt(v['p50'])}/{fmt(v['p99'])}/{fmt(v['max'])}"
                    for c, v in res.get("wait_d", {}).items()
                    if len(res.get("wait_d", {})) <= 4
                )
                parts = [f"    {mode:12s} util {fmt(res.get('utilisation'), 3)}"]
                if waits:
                    parts.append(f"wait d p50/p99/max {waits}")
                if scenario == "S1":
                    parts.append(f"newcomers {res.get('newcomer_wait_d')}")
                    parts.append(f"overtakes {res.get('hog_overtakes')}")
                if scenario == "S2":
                    share = res.get("share") or {}
                    parts.append("share " + " ".join(f"{c}={fmt(v, 3)}" for c, v in share.items()))
                    parts.append(f"Jain {fmt(res.get('jain_share_per_weight'), 3)}")
                if scenario in ("S6", "S6B"):
                    share = res.get("share_work") or {}
                    slot = res.get("share") or {}
                    parts.append(
                        "work share " + " ".join(f"{c}={fmt(v, 3)}" for c, v in share.items())
                    )
                    parts.append(f"Jain {fmt(res.get('jain_work_per_weight'), 3)}")
                    parts.append(
                        "slot share " + " ".join(f"{c}={fmt(v, 3)}" for c, v in slot.items())
                    )
                    parts.append(
                        f"(Jain {fmt(res.get('jain_share_per_weight'), 3)}), "
                        f"contention {fmt(res.get('contention_s'), 1)} s, "
                        f"max gap {fmt(res.get('max_gap_s'))} s, "
                        f"pick gap {fmt(res.get('pick_gap_s'))} s = K {fmt(res.get('k_seen'))} "
                        f"(bound K {fmt(res.get('k_bound'))}: {fmt(res.get('bound_s'))} s)"
                    )
                if scenario == "S3":
                    parts.append(
                        f"hog max {fmt(res.get('hog_max_wait_d'))} d "
                        f"(bound {fmt(res.get('max_wait_bound_d'))} d), "
                        f"fresh max {fmt(res.get('wait_d', {}).get('fresh', {}).get('max'))} d, "
                        f"aged {res.get('aged')}"
                    )
                if scenario == "S4":
                    parts.append(
                        f"throughput {fmt(res.get('throughput_per_s'))}/s "
                        f"of {fmt(res.get('ideal_throughput_per_s'))}/s "
                        f"(ratio {fmt(res.get('throughput_ratio'), 3)}), "
                        f"slot time/task {fmt(res.get('slot_time_per_task_ms'), 1)} ms, "
                        f"slot gap p50 {fmt((res.get('slot_gap_ms') or {}).get('p50'))} ms"
                    )
                if scenario == "S5":
                    lat = res.get("latency_ms") or {}
                    parts.append(
                        f"submit->start ms p50 {fmt(lat.get('p50'))} p99 {fmt(lat.get('p99'))} "
                        f"max {fmt(lat.get('max'))}"
                    )
                if res.get("timed_out"):
                    parts.append("TIMED OUT")
                lines.append("  ".join(parts))
    return lines


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Fairness scenarios S1-S6b against real Celery workers, Redis and PostgreSQL.",
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
            "scenarios": "S1,S2,S3,S4,S5,S6",
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

    import redis

    # A SIGTERM (e.g. a test's timeout) unwinds through the finally blocks, so workers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    run_id = f"{os.getpid():x}"
    configs = build_configs(args)
    print(
        f"pqh fairness benchmark: {len(configs)} runs, d={args.d} s, W={args.workers}, "
        f"scenarios {','.join(args.scenarios)}",
        flush=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.png_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pqhbench-"))
    procs = Processes()
    redis_client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    lock = ensure_database(args.database_url)
    failed = False
    results: dict[str, Any] = {
        "meta": {
            **run_meta(),
            "d": args.d,
            "workers": args.workers,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        },
        "scenarios": {},
    }
    raw: dict[str, Any] = {}
    try:
        prep = workdir / "prepare.json"
        prep.write_text(json.dumps({"users": users_needed(configs)}))
        run_child(
            procs,
            "prepare",
            ["--child-prepare", str(prep)],
            base_env(args),
            workdir / "prepare.log",
        )
        groups: dict[tuple, list] = {}
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
        for (scenario, variant, w), group in groups.items():
            png = None
            if not args.no_png and any(out["rows"] for _c, out, _r in group):
                variant_slug = f"_{variant.replace(':', '-')}" if variant else ""
                path = args.png_dir / f"fairness_{scenario.lower()}{variant_slug}_w{w}.png"
                plot(group, path)
                png = str(relative(path))
            service_png = None
            if (
                scenario in ("S6", "S6B")
                and not args.no_png
                and any(o["rows"] for _c, o, _r in group)
            ):
                path = args.png_dir / f"fairness_{scenario.lower()}_service_w{w}.png"
                plot_service(group, path)
                service_png = str(relative(path))
            entry = results["scenarios"].setdefault(
                scenario, {"title": TITLES[scenario], "runs": []}
            )
            entry["runs"].append(
                {
                    "W": w,
                    "variant": variant,
                    "png": png,
                    "service_png": service_png,
                    "plan": {
                        k: v
                        for k, v in group[0][0].plan.items()
                        if k not in ("fresh", "newcomers", "users")
                    }
                    | users_summary(group[0][0].plan),
                    "modes": {cfg.mode: res for cfg, _out, res in group},
                }
            )
    finally:
        procs.stop_all()
        lock.close()
        if args.keep_logs or failed:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    results["meta"]["elapsed_s"] = round(elapsed, 1)
    args.out.write_text(json.dumps(results, indent=1))
    if args.raw:
        args.out.with_name(args.out.stem + "_rows.json").write_text(json.dumps(raw))
    for line in summary_lines(results):
        print(line)
    print(f"\nwrote {relative(args.out)}; elapsed {elapsed:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
