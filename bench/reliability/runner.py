"""One reliability run: its services and processes, the load, the drain, then the report.

`Run` starts a private Redis (`fairqueue.testing.PrivateRedis`), a `TcpProxy` between the
workers and PostgreSQL, the web server as the Procfile runs it and the worker hosts; drives the
clients of scenario.py while faults.py injects the faults; waits until every accepted task has
ended; and hands the rest to analysis.py and report.py. Everything started is stopped in a
`finally`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import HIGH_RATE, ROOT, Processes, clean_environ, run_meta, wait_until
from fairqueue.testing import PrivateRedis, TcpProxy

from .analysis import checks, load_figures
from .faults import inject
from .report import summarise
from .scenario import Client, Load, Plan, settings_env


class Run:
    """One invocation: services, processes, load, faults, then the checks."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="pqh-reliability-"))
        self.procs = Processes(self.workdir)
        self.prefix = f"pqhrel{os.getpid()}"
        self.run_log = self.workdir / "runs.log"
        self.faults: list[dict[str, Any]] = []
        self.redis = None
        self.proxy = None
        self.lock = None
        self.t0 = 0.0
        # The injector thread restarts a killed host, and a process started with
        # PR_SET_PDEATHSIG gets its SIGTERM when the *thread* that forked it ends, not the
        # benchmark: the injector lives until the run is over (until `over` is set).
        self.faults_done = threading.Event()
        self.over = threading.Event()

    # --- set-up ---------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = clean_environ()
        env.update(
            DJANGO_SETTINGS_MODULE="pqh_site.settings",
            DATABASE_URL=self.args.database_url,
            REDIS_URL=self.redis.url,
            PQH_REDIS_PREFIX=self.prefix,
            PQH_SECRET_KEY="pqh-bench-only-not-a-secret",
            PQH_BENCH_RUN_LOG=str(self.run_log),
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            **settings_env(self.args),
        )
        env.update(extra)
        return env

    def setup(self) -> None:
        import dj_database_url
        import psycopg

        from pqh_site.database import connect_params, database_create_if_missing

        db = dj_database_url.parse(self.args.database_url)
        if database_create_if_missing(db):
            print(f"created database {db['NAME']}")
        self.lock = psycopg.connect(dbname=db["NAME"], autocommit=True, **connect_params(db))
        locked = self.lock.execute("SELECT pg_try_advisory_lock(hashtext('pqh-bench-reliability'))")
        if not locked.fetchone()[0]:
            raise SystemExit(
                f"another reliability benchmark is running against {db['NAME']}; "
                "wait for it or pass another --database-url"
            )
        self.redis = PrivateRedis(self.workdir / "redis").start()
        self.proxy = TcpProxy(int(db["PORT"] or 5432), db["HOST"] or "127.0.0.1").start()
        for name in set(os.environ) - set(clean_environ()):
            del os.environ[name]
        os.environ.update(self.env())
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        from django.db import connection

        with connection.cursor() as cursor:
            # The run's own database: every task row of it is this run's.
            cursor.execute(
                "TRUNCATE tasks_app_taskrecord, django_celery_results_taskresult, "
                "django_celery_results_groupresult, django_celery_results_chordcounter"
            )
        from users_app.models import Profile
        from users_app.services import api_user_create

        self.users: dict[str, str] = {}
        self.user_ids: dict[str, int] = {}
        for i in range(self.args.users):
            name = f"rel_user{i + 1}"
            user, token, _ = api_user_create(username=name, weight=1 + i % 3)
            self.users[name] = token.key
            self.user_ids[name] = user.pk
        # The run measures faults, not the door (bench.door does): each user may submit and
        # read as fast as the load asks (5 submissions a second each at the defaults, past
        # PQH_SUBMIT_RATE's 120/m), its requests still counted by the door's buckets.
        Profile.objects.filter(user_id__in=self.user_ids.values()).update(
            submit_rate=HIGH_RATE, read_rate=HIGH_RATE
        )

    def worker_cmd(self, host: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "pqh_site",
            "worker",
            "-c",
            str(self.args.concurrency),
            "-n",
            f"{host}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "info",
        ]

    def worker_env(self) -> dict[str, str]:
        db_url = self.args.database_url
        upstream = f"{self.proxy.upstream[0]}:{self.proxy.upstream[1]}/"
        proxied = db_url.replace(upstream, f"127.0.0.1:{self.proxy.port}/")
        if proxied == db_url:
            raise SystemExit(f"--database-url must name host:port explicitly, got {db_url}")
        return self.env(DATABASE_URL=proxied)

    def start_host(self, host: str) -> None:
        self.procs.start(host, self.worker_cmd(host), env=self.worker_env())

    def start(self) -> None:
        web_env = self.env(PQH_BIND=f"127.0.0.1:{self.args.port}")
        self.procs.start("web", [sys.executable, "-m", "honcho", "start", "web"], env=web_env)
        self.hosts = [f"relhost{i + 1}" for i in range(self.args.hosts)]
        for host in self.hosts:
            self.start_host(host)
        token = next(iter(self.users.values()))

        def web_up() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=5)
                conn.request("GET", "/api/usage/", headers={"Authorization": f"Token {token}"})
                return conn.getresponse().status == 200
            except OSError:
                return False

        wait_until(web_up, timeout=60, what="the web server did not answer")
        for host in self.hosts:
            wait_until(
                lambda host=host: " ready." in self.procs.log(host),
                timeout=60,
                what=f"worker {host} did not become ready",
            )

    # --- the clock and what runs (the faults read them) ----------------------------------

    def now(self) -> float:
        """Seconds since the load started."""
        return time.monotonic() - self.t0

    def started_on(self, host: str | None = None) -> int:
        """How many tasks are STARTED (on `host`, or anywhere)."""
        from django.db import close_old_connections

        from tasks_app.models import TaskRecord

        close_old_connections()
        rows = TaskRecord.objects.filter(status="STARTED")
        if host:
            rows = rows.filter(worker__startswith=f"{host}@")
        return rows.count()

    # --- load -----------------------------------------------------------------------------

    def load(self) -> Load:
        args = self.args
        load = Load()
        plan = Plan(args.submissions)
        phase = args.submissions / args.rate
        self.t0 = time.monotonic()
        clients = [
            Client(
                port=args.port,
                users=self.users,
                plan=plan,
                start=self.t0,
                rate=args.rate,
                load=load,
                args=args,
                rng_seed=args.seed * 1000 + i,
            )
            for i in range(args.clients)
        ]
        injector = threading.Thread(target=inject, args=(self, phase), daemon=True)
        for client in clients:
            client.start()
        injector.start()
        for client in clients:
            client.join()
        self.submitted_s = self.now()
        self.faults_done.wait()  # every fault runs to its end before the drain
        return load

    def drain(self, load: Load) -> float:
        from django.db import close_old_connections

        from tasks_app.models import TaskRecord

        ids = {c.task_id for c in load.accepted()}
        deadline = time.monotonic() + self.args.drain_timeout
        last = -1
        while time.monotonic() < deadline:
            close_old_connections()
            open_ = TaskRecord.objects.filter(pk__in=ids).exclude(
                status__in=("SUCCESS", "FAILURE", "REVOKED")
            )
            left = open_.count()
            if left == 0:
                break
            if left != last:
                print(f"  {self.now():6.1f} s  {left} tasks not ended yet", flush=True)
                last = left
            time.sleep(1)
        return self.now()

    # --- everything -----------------------------------------------------------------------

    def execute(self) -> int:
        """Set up, load, inject, drain, check; write the JSON and the summary; 0 if all held."""
        args = self.args
        began = time.monotonic()
        try:
            self.setup()
            print(
                f"starting web on 127.0.0.1:{args.port} and {args.hosts} worker hosts", flush=True
            )
            self.start()
            phase = args.submissions / args.rate
            print(
                f"{args.submissions} submissions from {args.clients} clients for {args.users} users "
                f"over {phase:.0f} s; faults: {', '.join(args.faults) or 'none'}",
                flush=True,
            )
            load = self.load()
            print(f"  {self.now():6.1f} s  submissions done; waiting for every task to end")
            ended = self.drain(load)
            outcome, results = checks(self, load)
            report = {
                "meta": {
                    **run_meta(),
                    "elapsed_s": round(time.monotonic() - began, 1),
                },
                "config": {
                    k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                },
                "settings": settings_env(args),
                "load": load_figures(load, args, self.submitted_s, ended),
                "faults": self.faults,
                "outcome": outcome,
                "checks": results,
                "ok": all(c["ok"] for c in results.values()),
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2, default=str))
            summarise(report, args.out)
            return 0 if report["ok"] else 1
        finally:
            self.over.set()
            self.procs.stop_all()
            if self.proxy is not None:
                self.proxy.stop()
            if self.redis is not None:
                self.redis.stop()
            if self.lock is not None:
                self.lock.close()
            if args.keep_logs:
                print(f"logs kept in {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
