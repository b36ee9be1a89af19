"""One run: queue N tasks of one length, start a worker with C slots, time the finishes.

Each system has its own redis-server (a private one, started here) and its own database
(emptied before each run). The tasks are queued before the worker starts; the worker's
figures run from the first finish to the last (the steady state: no start-up, no tail):
tasks per second, ms of slot per task (C × that span / (N − 1)), and the CPU the worker's
processes and its redis-server spent per task over the whole run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ROOT, Processes, clean_environ, die_with_parent, tail, wait_until
from fairqueue.testing import PrivateRedis

from .profile import top_items

PQH_USER = "bench_workers"

# Run in the tree measured (this one, or --before's), on its own settings: queue N tasks.
_QUEUE_PQH = """
import os, sys, django
django.setup()
from django.contrib.auth import get_user_model
from users_app.services import api_user_create
from tasks_app.services.submission import task_submit
user = api_user_create(username=%(user)r)[0]
for i in range(int(sys.argv[1])):
    task_submit(user=user, x={"seconds": float(sys.argv[2])})
"""
_QUEUE_PEER = """
import sys, django
django.setup()
from bench.workers.peer.tasks import work
for i in range(int(sys.argv[1])):
    work.delay({"seconds": float(sys.argv[2])})
"""
_MIGRATE = "import django; django.setup(); from django.core.management import call_command; call_command('migrate', verbosity=0)"


@dataclass(frozen=True)
class System:
    """What is measured: pqh from a source tree, or the peer."""

    name: str
    tree: Path
    database_url: str
    env: tuple[tuple[str, str], ...] = ()  # settings of its own (a variant of pqh)

    @property
    def is_peer(self) -> bool:
        return self.name == "peer"


def env_for(system: System, redis_url: str) -> dict[str, str]:
    env = clean_environ()
    env.update(
        PYTHONPATH=str(system.tree),
        PYTHONUNBUFFERED="1",
        DATABASE_URL=system.database_url,
        REDIS_URL=redis_url,
    )
    if system.is_peer:
        env["DJANGO_SETTINGS_MODULE"] = "bench.workers.peer.settings"
    else:
        env.update(
            DJANGO_SETTINGS_MODULE="pqh_site.settings",
            PQH_SECRET_KEY="bench-workers-not-secret",
            PQH_REDIS_PREFIX="benchworkers",
            PQH_TASK_CALLABLE="bench.workload.sleep_for",
            PQH_USER_MAX_ACTIVE="100000",
            PQH_SUBMIT_RATE="off",
        )
    env.update(system.env)
    return env


def _sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    import dj_database_url
    import psycopg

    from pqh_site.database import connect_params

    db = dj_database_url.parse(url)
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **connect_params(db)) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def prepare_database(system: System, procs: Processes, logdir: Path) -> None:
    """Create the system's database if missing and migrate it (once per benchmark)."""
    import dj_database_url

    from pqh_site.database import database_create_if_missing

    database_create_if_missing(dj_database_url.parse(system.database_url))
    env = env_for(system, "redis://127.0.0.1:1/0")
    _run(procs, f"migrate-{system.name}", ["-c", _MIGRATE], env, system.tree, logdir)


def _run(procs: Processes, name: str, args: list[str], env, cwd: Path, logdir: Path) -> None:
    log = logdir / f"{name}.log"
    with log.open("a") as out:
        rc = subprocess.run(
            [sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    if rc != 0:
        raise RuntimeError(f"{name} failed ({rc}):\n{tail(log)}")


def _finishes(system: System) -> list[float]:
    if system.is_peer:
        rows = _sql(
            system.database_url,
            "SELECT extract(epoch FROM date_done) FROM django_celery_results_taskresult "
            "WHERE status = 'SUCCESS' ORDER BY date_done",
        )
    else:
        rows = _sql(
            system.database_url,
            "SELECT extract(epoch FROM finished_at) FROM tasks_app_taskrecord "
            "WHERE status = 'SUCCESS' ORDER BY finished_at",
        )
    return [float(r[0]) for r in rows]


def _cpu_seconds(pgid: int) -> float:
    """CPU (user + system) of every live process in the process group `pgid`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # field 5: the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def run_one(
    system: System,
    *,
    seconds: float,
    tasks: int,
    concurrency: int,
    procs: Processes,
    workdir: Path,
    profile: bool,
) -> dict:
    """Queue `tasks` tasks of `seconds`, run them on a worker of `concurrency` slots."""
    label = f"{system.name}-{seconds:g}s"
    redis = PrivateRedis(workdir / f"redis-{label}").start()
    try:
        env = env_for(system, redis.url)
        if system.is_peer:
            _sql(system.database_url, "TRUNCATE django_celery_results_taskresult")
            code = _QUEUE_PEER
        else:
            _sql(
                system.database_url,
                "TRUNCATE tasks_app_taskrecord, django_celery_results_taskresult",
            )
            code = _QUEUE_PQH % {"user": PQH_USER}
        _run(
            procs,
            f"queue-{label}",
            ["-c", code, str(tasks), str(seconds)],
            env,
            system.tree,
            workdir,
        )
        app = "bench.workers.peer" if system.is_peer else "pqh_site"
        log = workdir / f"worker-{label}.log"
        cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "-c", str(concurrency)]
        cmd += ["--without-mingle", "--without-gossip", "-l", "info", "-n", f"{label}@%h"]
        # In the tree measured: `python -m` puts its working directory first on sys.path.
        with log.open("a") as out:
            worker = subprocess.Popen(
                cmd,
                cwd=system.tree,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        procs.procs[f"worker-{label}"] = worker
        # The tasks are queued before the worker starts, and a fast worker drains a few before
        # its readiness is seen: look often, and count the CPU over the tasks that end after.
        wait_until(
            lambda: " ready." in tail(log, None),
            timeout=90,
            what=f"{label}: worker ready",
            interval=0.01,
        )
        cpu0, redis0 = _cpu_seconds(worker.pid), _cpu_seconds(redis.proc.pid)
        done0 = len(_finishes(system))
        spy = None
        if profile:
            spy_out = workdir / f"profile-{label}.txt"
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker.pid)]
                + ["--subprocesses", "--idle", "--nonblocking", "--format", "raw"]
                + ["--rate", "200", "-o", str(spy_out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        wait_until(
            lambda: len(_finishes(system)) >= tasks,
            timeout=60 + tasks * (seconds + 0.5),
            what=f"{label}: {tasks} tasks finished",
            interval=0.5,
        )
        cpu = _cpu_seconds(worker.pid) - cpu0
        redis_cpu = _cpu_seconds(redis.proc.pid) - redis0
        profile_top = None
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            profile_top = top_items(workdir / f"profile-{label}.txt")
        procs.stop(f"worker-{label}")
    finally:
        redis.stop()
    finishes = _finishes(system)
    span = finishes[-1] - finishes[0]
    n = len(finishes)
    return {
        "system": system.name,
        "seconds": seconds,
        "tasks": n,
        "concurrency": concurrency,
        "span_s": round(span, 3),
        "tasks_per_s": round((n - 1) / span, 1) if span > 0 else None,
        "slot_ms_per_task": round(concurrency * span / (n - 1) * 1000, 2) if n > 1 else None,
        "cpu_counted_tasks": n - done0,
        "worker_cpu_ms_per_task": round(cpu / (n - done0) * 1000, 2) if n > done0 else None,
        "redis_cpu_ms_per_task": round(redis_cpu / (n - done0) * 1000, 3) if n > done0 else None,
        "profile": profile_top,
        "at": time.time(),
    }


__all__ = ["ROOT", "System", "prepare_database", "run_one"]
