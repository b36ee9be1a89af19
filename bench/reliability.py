"""Reliability benchmark: load over HTTP while a worker host dies, PostgreSQL blinks, Redis empties.

Dozens of clients submit thousands of tasks for several users over loopback HTTP to the web
server as the Procfile runs it, while worker hosts run them. In the middle of the run, one
after another: a whole worker host is SIGKILLed and started again, the workers' connection to
PostgreSQL is cut for several seconds (they reach it through a TcpProxy), and Redis, which
everything uses (a redis-server of the benchmark's own), is restarted empty. Then it waits for
every accepted task to end and checks that nothing was lost:

- every accepted task has a final state, and accepted = recorded = finished + failed + cancelled;
- failed are exactly the tasks asked to fail, cancelled exactly those whose cancel answered 200;
- one stored result per ended task, agreeing with its history row;
- no 5xx but the 503s of a fault, and no connection errors (a 429, a user at its cap of tasks
  queued or running, is a deliberate refusal like those 503s: counted, never accepted);
- each user's window holds exactly the accepted submissions made since the last Redis restart;
- nothing left in Redis's queues, no place under a user's cap held by a task that has ended,
  and every worker host still running.

    .venv/bin/python bench/reliability.py             # the default run (a few minutes)
    .venv/bin/python bench/reliability.py --quick     # the smaller version `make test` runs

Writes bench/results/reliability.json and prints a summary; exits 1 if a check failed. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # pqh's packages and bench.harness, run as a script or not

from bench.harness import Processes, clean_environ, run_meta, wait_until  # noqa: E402
from fairqueue.stats import percentile  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_reliability"
FAULTS = ("kill", "db", "redis")
# When each fault starts, as a fraction of the submission phase: one after the other.
FAULT_AT = {"kill": 0.2, "db": 0.4, "redis": 0.75}


def work(x: Any) -> dict[str, Any]:
    """The benchmark's task (PQH_TASK_CALLABLE): sleep PQH_TASK_SECONDS, log the run, maybe fail.

    Every completed run appends one line to PQH_BENCH_RUN_LOG (O_APPEND: lines never mix), so
    the benchmark can count how many times each task's work ran to its end.
    """
    from django.conf import settings

    time.sleep(settings.PQH_TASK_SECONDS)
    n = x.get("n") if isinstance(x, dict) else None
    path = os.environ.get("PQH_BENCH_RUN_LOG")
    if path and n is not None:
        with open(path, "a") as log:
            log.write(f"{n}\n")
    if isinstance(x, dict) and x.get("fail"):
        raise ValueError(f"submission {n} asked to fail")
    return {"n": n}


# ------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
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


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """The pqh settings every process of the run shares."""
    return {
        "PQH_TASK_SECONDS": repr(args.task_seconds),
        "PQH_TASK_CALLABLE": "bench.reliability.work",
        "PQH_TASK_TIME_LIMIT": str(args.time_limit),
        # Above the hard limit (time limit + 30 s), as pqh requires.
        "PQH_VISIBILITY_TIMEOUT": str(args.time_limit + 35),
        "PQH_RESTORE_SECONDS": "2",
        "PQH_RECOVER_LOST_SECONDS": "3",
        "PQH_RECONCILE_SECONDS": "3",
        "PQH_RELEASE_RECOVER_SECONDS": "3",
        "PQH_MAX_WAIT_SECONDS": "30",
    }


# ------------------------------------------------------------------------------------------
# HTTP clients
# ------------------------------------------------------------------------------------------


@dataclass
class Call:
    kind: str  # submit, cancel, poll
    user: str
    n: int
    started: float  # seconds since the run's start
    ended: float
    status: int  # 0: no answer (connection error)
    task_id: str = ""
    error: str = ""


@dataclass
class Load:
    """What the clients did, shared by their threads."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def accepted(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.kind == "submit" and c.status == 202]


class Client(threading.Thread):
    """One HTTP client, taking the next submission off a shared plan at the planned time."""

    def __init__(self, *, port, users, plan, start, rate, load, args, rng_seed):
        super().__init__(daemon=True)
        self.port, self.users, self.plan, self.t0, self.rate = port, users, plan, start, rate
        self.load, self.args = load, args
        self.rng = random.Random(rng_seed)

    def request(self, method: str, path: str, token: str, body: Any = None):
        """One request on a connection of its own: nothing is ever sent twice."""
        data = None if body is None else json.dumps(body)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw or b"null")
        except ValueError:
            return response.status, {"raw": raw[:200].decode(errors="replace")}

    def call(self, kind: str, user: str, n: int, method: str, path: str, body: Any = None):
        started = time.monotonic() - self.t0
        try:
            status, answer = self.request(method, path, self.users[user], body)
            error = "" if status < 500 else json.dumps(answer)[:200]
        except (OSError, http.client.HTTPException) as exc:
            status, answer, error = 0, {}, f"{type(exc).__name__}: {exc}"
        task_id = answer.get("task_id", "") if isinstance(answer, dict) else ""
        self.load.add(
            Call(kind, user, n, started, time.monotonic() - self.t0, status, task_id, error)
        )
        return status, answer

    def run(self) -> None:
        names = list(self.users)
        for n in self.plan:
            # Paced: submission n goes at t0 + n / rate, whichever client takes it.
            delay = self.t0 + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            user = names[n % len(names)]
            body = {"x": {"n": n, "fail": n % self.args.fail_every == 0}}
            path = "/task" if n % 2 else "/api/tasks/"
            status, answer = self.call("submit", user, n, "POST", path, body)
            task_id = answer.get("task_id") if status == 202 else None
            if task_id and n % self.args.cancel_every == 0:
                self.call("cancel", user, n, "DELETE", f"/api/tasks/{task_id}/")
            if n % self.args.poll_every == 0:
                accepted = [c for c in self.load.accepted() if c.user == user]
                if accepted:
                    poll = self.rng.choice(accepted)
                    self.call("poll", user, poll.n, "GET", f"/result/{poll.task_id}")


class Plan:
    """The submission numbers 0..N-1, handed out in order to whichever client asks."""

    def __init__(self, total: int) -> None:
        self.counter = itertools.count()
        self.total = total
        self.lock = threading.Lock()

    def __iter__(self):
        while True:
            with self.lock:
                n = next(self.counter)
            if n >= self.total:
                return
            yield n


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


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

        from fairqueue.testing import PrivateRedis, TcpProxy
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
        from users_app.services import api_user_create

        self.users: dict[str, str] = {}
        self.user_ids: dict[str, int] = {}
        for i in range(self.args.users):
            name = f"rel_user{i + 1}"
            user, token, _ = api_user_create(username=name, weight=1 + i % 3)
            self.users[name] = token.key
            self.user_ids[name] = user.pk

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

    # --- faults ---------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def started_on(self, host: str | None = None) -> int:
        from django.db import close_old_connections

        from tasks_app.models import TaskRecord

        close_old_connections()
        rows = TaskRecord.objects.filter(status="STARTED")
        if host:
            rows = rows.filter(worker__startswith=f"{host}@")
        return rows.count()

    def fault_kill(self) -> dict[str, Any]:
        host = self.hosts[0]
        # Mid-task: wait (a few seconds at most) until the host is running something.
        deadline = time.monotonic() + 5
        while (running := self.started_on(host)) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        start = self.now()
        self.procs.kill(host)
        self.start_host(host)
        return {"host": host, "tasks_running_on_it": running, "start": start, "end": self.now()}

    def fault_db(self) -> dict[str, Any]:
        running = self.started_on()
        start = self.now()
        self.proxy.cut()
        time.sleep(self.args.db_outage)
        self.proxy.restore()
        return {"tasks_running": running, "start": start, "end": self.now()}

    def fault_redis(self) -> dict[str, Any]:
        from tasks_app import scheduler

        waiting = None
        with contextlib.suppress(Exception):
            waiting = scheduler.queue_waiting_count()
        start = self.now()
        self.redis.restart_empty(down_seconds=self.args.redis_down)
        return {"tasks_waiting_lost": waiting, "start": start, "end": self.now()}

    def inject(self, phase: float) -> None:
        try:
            for name in self.args.faults:
                at = FAULT_AT[name] * phase
                while self.now() < at and not self.over.is_set():
                    time.sleep(0.05)
                if self.over.is_set():
                    return
                print(f"  {self.now():6.1f} s  fault: {name}", flush=True)
                try:
                    info = getattr(self, f"fault_{name}")()
                except Exception as exc:  # recorded, and the checks fail on it
                    info = {"error": f"{type(exc).__name__}: {exc}", "start": at, "end": self.now()}
                info["start"], info["end"] = round(info["start"], 2), round(info["end"], 2)
                self.faults.append({"fault": name, **info})
        finally:
            self.faults_done.set()
        self.over.wait()  # keeps what this thread started alive (see __init__)

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
        injector = threading.Thread(target=self.inject, args=(phase,), daemon=True)
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

    # --- checks ---------------------------------------------------------------------------

    def leaked_cap_places(self) -> dict[str, list[str]]:
        """Return, per user, the active-set members (places under the cap) of no live task."""
        import uuid

        from django.db import close_old_connections

        from tasks_app.admission import active_key
        from tasks_app.models import TaskRecord
        from tasks_app.redis_client import get_redis

        close_old_connections()
        redis = get_redis()
        leaked = {}
        for name, uid in self.user_ids.items():
            members = set(redis.zrange(active_key(uid), 0, -1))
            ids = []
            for member in members:
                with contextlib.suppress(ValueError):
                    ids.append(uuid.UUID(member))
            live = {
                str(pk)
                for pk in TaskRecord.objects.filter(
                    pk__in=ids, status__in=("PENDING", "STARTED")
                ).values_list("pk", flat=True)
            }
            if members - live:
                leaked[name] = sorted(members - live)
        return leaked

    def settled_cap_places(self, timeout: float = 10.0) -> dict[str, list[str]]:
        """leaked_cap_places, once the last ends had time to free theirs (just after the row)."""
        deadline = time.monotonic() + timeout
        while (leaked := self.leaked_cap_places()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return leaked

    def checks(self, load: Load) -> tuple[dict[str, Any], dict[str, Any]]:
        from django.db import close_old_connections
        from django_celery_results.models import TaskResult

        from tasks_app.models import TaskRecord
        from tasks_app.redis_client import get_redis
        from tasks_app.window import window_key

        close_old_connections()
        calls = load.calls
        submits = [c for c in calls if c.kind == "submit"]
        accepted = {c.task_id: c for c in submits if c.status == 202}
        rows = {
            str(pk): (status, n)
            for pk, status, n in TaskRecord.objects.values_list("pk", "status", "input__n")
        }
        statuses = Counter(status for status, _ in rows.values())
        stored = defaultdict(list)
        for task_id, status in TaskResult.objects.values_list("task_id", "status"):
            stored[task_id].append(status)
        final = ("SUCCESS", "FAILURE", "REVOKED")
        not_final = sorted(t for t, (s, _) in rows.items() if s not in final)
        cancelled_ok = {c.n for c in calls if c.kind == "cancel" and c.status == 200}
        asked_to_fail = {c.n for c in accepted.values() if c.n % self.args.fail_every == 0}
        failed_ns = {n for s, n in rows.values() if s == "FAILURE"}
        revoked_ns = {n for s, n in rows.values() if s == "REVOKED"}
        bad_results = sorted(t for t, (s, _) in rows.items() if s in final and stored.get(t) != [s])
        runs = (
            Counter(
                int(line) for line in self.run_log.read_text().split() if line.strip().isdigit()
            )
            if self.run_log.exists()
            else Counter()
        )
        ended_ns = {n for s, n in rows.values() if s in ("SUCCESS", "FAILURE")}
        never_ran = sorted(n for n in ended_ns if runs[n] == 0 and n not in revoked_ns)

        windows: list[tuple[float, float]] = [
            (f["start"] - 0.5, f["end"] + 2.0) for f in self.faults if f["fault"] in ("db", "redis")
        ]

        def in_fault(call: Call) -> bool:
            return any(call.started <= end and call.ended >= start for start, end in windows)

        errors_5xx = [c for c in calls if c.status >= 500 and not (c.status == 503 and in_fault(c))]
        no_answer = [c for c in calls if c.status == 0]

        # Windows: what each user's window must hold since the last Redis restart.
        restart = [f for f in self.faults if f["fault"] == "redis" and "error" not in f]
        since = (restart[-1]["start"], restart[-1]["end"]) if restart else (-1.0, -1.0)
        redis = get_redis()
        window_report = {}
        window_ok = True
        for name, uid in self.user_ids.items():
            members = set(redis.zrange(window_key(uid), 0, -1))
            mine = [c for c in accepted.values() if c.user == name]
            must = {c.task_id for c in mine if c.started >= since[1]}
            must_not = {c.task_id for c in mine if c.ended <= since[0]}
            ok = members <= set(accepted) and must <= members and not (members & must_not)
            window_ok &= ok
            window_report[name] = {
                "count": len(members),
                "accepted_since_restart": len(must),
                "during_restart": len(mine) - len(must) - len(must_not),
                "ok": ok,
            }

        from tasks_app import scheduler

        left_queued = scheduler.queue_waiting_count() + sum(scheduler.queue_broker_lengths())
        leaked = self.settled_cap_places()
        dead_hosts = [host for host in self.hosts if not self.procs.running(host)]
        logs = "".join(self.procs.log(host) for host in self.hosts)
        recovery = {
            "db_retries_logged": logs.count("PostgreSQL is unavailable"),
            "handed_back_not_claimed": logs.count("reject requeue=True: not claimed"),
            "handed_back_not_finished": logs.count("reject requeue=True: not finished"),
            "requeued_recorded_not_queued": logs.count("was recorded but not queued"),
            "requeued_started_never_finished": logs.count("started and was never finished"),
        }
        outcome = {
            "accepted": len(accepted),
            "recorded": len(rows),
            "finished": statuses["SUCCESS"],
            "failed": statuses["FAILURE"],
            "cancelled": statuses["REVOKED"],
            "not_final": len(not_final),
            "not_final_sample": not_final[:10],
            "refused_503": sum(1 for c in submits if c.status == 503),
            "refused_429": sum(1 for c in submits if c.status == 429),
            "stored_results": sum(len(v) for v in stored.values()),
            "results_disagreeing": bad_results[:10],
            "runs_completed": sum(runs.values()),
            "tasks_run_more_than_once": sum(1 for n in ended_ns if runs[n] > 1),
            "max_runs_of_one_task": max((runs[n] for n in ended_ns), default=0),
            "windows": window_report,
            "left_in_queues": left_queued,
            "leaked_cap_places": {name: len(ids) for name, ids in leaked.items()},
            "leaked_cap_places_sample": [i for ids in leaked.values() for i in ids][:10],
            "worker_hosts_dead_at_the_end": dead_hosts,
            "worker_crashes_logged": logs.count("Unrecoverable error"),
            "recovery_in_worker_logs": recovery,
        }
        total = statuses["SUCCESS"] + statuses["FAILURE"] + statuses["REVOKED"]
        checks = {
            "every_accepted_task_ended": (not not_final, f"{len(not_final)} not ended"),
            "accepted=recorded=finished+failed+cancelled": (
                len(accepted) == len(rows) == total and set(accepted) == set(rows),
                f"{len(accepted)} accepted, {len(rows)} recorded, {total} ended",
            ),
            "failed_exactly_those_asked_to": (
                failed_ns == asked_to_fail - revoked_ns,
                f"{len(failed_ns)} failed, {len(asked_to_fail - revoked_ns)} asked",
            ),
            "cancelled_exactly_those_cancelled": (
                revoked_ns == cancelled_ok,
                f"{len(revoked_ns)} revoked, {len(cancelled_ok)} cancels answered 200",
            ),
            "one_stored_result_per_ended_task": (not bad_results, f"{len(bad_results)} wrong"),
            "every_ended_task_ran": (not never_ran, f"{len(never_ran)} ended without a run"),
            "no_5xx_but_deliberate_503": (
                not errors_5xx,
                "; ".join(
                    f"{c.kind} {c.status} at {c.started:.1f}s {c.error}" for c in errors_5xx[:5]
                )
                or "none",
            ),
            "no_connection_errors": (not no_answer, f"{len(no_answer)} calls without an answer"),
            "windows_count_since_last_redis_restart": (window_ok, "see outcome.windows"),
            "queues_empty_at_the_end": (not left_queued, f"{left_queued} left in Redis"),
            "no_leaked_cap_places": (
                not leaked,
                f"{sum(len(ids) for ids in leaked.values())} places held by no live task",
            ),
            "every_worker_host_running_at_the_end": (
                not dead_hosts,
                f"{', '.join(dead_hosts) or 'none'} stopped",
            ),
            "every_fault_injected": (
                len(self.faults) == len(self.args.faults)
                and not any("error" in f for f in self.faults),
                "; ".join(f"{f['fault']}: {f.get('error', 'ok')}" for f in self.faults) or "none",
            ),
        }
        return outcome, {
            name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()
        }

    # --- everything -----------------------------------------------------------------------

    def execute(self) -> int:
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
            outcome, checks = self.checks(load)
            latencies = [c.ended - c.started for c in load.calls if c.kind == "submit"]
            report = {
                "meta": {
                    **run_meta(),
                    "elapsed_s": round(time.monotonic() - began, 1),
                },
                "config": {
                    k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                },
                "settings": settings_env(args),
                "load": {
                    "requests": len(load.calls),
                    "by_kind": dict(Counter(c.kind for c in load.calls)),
                    "statuses": {
                        str(k): v for k, v in Counter(c.status for c in load.calls).items()
                    },
                    "clients": args.clients,
                    "users": args.users,
                    "submission_phase_s": round(self.submitted_s, 1),
                    "submissions_per_s": round(args.submissions / self.submitted_s, 1),
                    "submit_latency_ms": {
                        "p50": round(1000 * (percentile(latencies, 50) or 0), 1),
                        "p99": round(1000 * (percentile(latencies, 99) or 0), 1),
                        "max": round(1000 * max(latencies, default=0), 1),
                    },
                    "all_ended_at_s": round(ended, 1),
                },
                "faults": self.faults,
                "outcome": outcome,
                "checks": checks,
                "ok": all(c["ok"] for c in checks.values()),
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


def summarise(report: dict[str, Any], out: Path) -> None:
    load, outcome = report["load"], report["outcome"]
    print()
    print(
        f"load: {load['requests']} requests ({load['by_kind']}) from {load['clients']} clients, "
        f"{load['users']} users; submissions for {load['submission_phase_s']} s "
        f"({load['submissions_per_s']}/s), POST p50 {load['submit_latency_ms']['p50']} ms "
        f"p99 {load['submit_latency_ms']['p99']} ms; all ended at {load['all_ended_at_s']} s"
    )
    print(f"statuses: {load['statuses']}")
    for fault in report["faults"]:
        detail = {k: v for k, v in fault.items() if k not in ("fault", "start", "end")}
        print(f"fault {fault['fault']}: {fault['start']:.1f}-{fault['end']:.1f} s {detail}")
    print(
        f"accepted {outcome['accepted']}, recorded {outcome['recorded']}: finished "
        f"{outcome['finished']}, failed {outcome['failed']}, cancelled {outcome['cancelled']}, "
        f"not ended {outcome['not_final']}; refused (503) {outcome['refused_503']}, "
        f"(429) {outcome['refused_429']}; "
        f"work runs {outcome['runs_completed']}, tasks run more than once "
        f"{outcome['tasks_run_more_than_once']}"
    )
    print(f"recovery seen in the worker logs: {outcome['recovery_in_worker_logs']}")
    for name, check in report["checks"].items():
        print(f"  [{'ok' if check['ok'] else 'FAIL'}] {name}: {check['detail']}")
    print(f"{'OK' if report['ok'] else 'FAILED'}; wrote {out} ({report['meta']['elapsed_s']} s)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    return run.execute()


if __name__ == "__main__":
    sys.exit(main())
