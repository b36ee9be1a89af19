"""API load benchmark: every route under wrk at 8, 32 and 64 connections, the depth table, the soak.

Starts pqh's web server exactly as `make run` ships it (the Procfile's `web:` entry, through
honcho), with no Celery worker, on a database and Redis prefix of its own, and drives it with wrk
(`bench/wrk/api.lua` spreads requests over many users' tokens and their task ids).

    .venv/bin/python bench/api.py            # the default run (7-8 minutes on a busy 2-core box)
    .venv/bin/python bench/api.py --quick    # a smoke run (seconds)
    .venv/bin/python bench/api.py --soak     # the soak: minutes at 32 connections past 500k

Writes bench/results/api.json (or api_soak.json) and prints a table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # pqh's packages and bench.harness

from bench.harness import clean_environ, run_meta, start_process, tail  # noqa: E402
from fairqueue.stats import percentile  # noqa: E402

# What the figures depend on: a change here makes the commit recorded "-dirty".
COMMIT_PATHS = ("tasks_app", "pqh_site", "users_app", "Procfile")
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "wrk" / "api.lua"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/pqh_benchapi"
DEFAULT_PREFIX = "pqh_benchapi"
# route key -> (label, wrk mode of pqh, wrk mode of the original or None)
ROUTES: dict[str, tuple[str, str, str | None]] = {
    "post_task": ("POST /task", "post-task", "orig-post"),
    "post_api": ("POST /api/tasks/", "post-api", None),
    "get_result": ("GET /result/<id>", "get-result", "orig-get"),
    "get_detail": ("GET /api/tasks/<id>/", "get-detail", None),
}
BENCH_SECRET = "pqh-bench-only-not-a-secret"


# ------------------------------------------------------------------------------------------
# Django, in this process: users, filling the queue, the counting probe.
# ------------------------------------------------------------------------------------------


def django_setup(args: argparse.Namespace) -> None:
    """Point this process at the benchmark's database and prefix, create and migrate it."""
    for name in set(os.environ) - set(clean_environ()):
        del os.environ[name]
    os.environ.update(server_settings(args))
    import dj_database_url

    from pqh_site.database import database_create_if_missing

    if database_create_if_missing(dj_database_url.parse(args.database_url)):
        print(f"created database {dj_database_url.parse(args.database_url)['NAME']}", flush=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def server_settings(args: argparse.Namespace) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "pqh_site.settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PQH_REDIS_PREFIX": args.prefix,
        "PQH_SECRET_KEY": BENCH_SECRET,
        # The depth table and the soak measure submissions accepted at 500,000 queued tasks and
        # more, from 200 users: lift the global bound (100,000) and the per-user cap (100) that
        # would otherwise refuse them (a refusal is cheaper, and not what is measured).
        "PQH_MAX_QUEUED": "100000000",
        "PQH_USER_MAX_ACTIVE": "100000000",
    }


def bench_lock(database_url: str):
    """Return a connection holding the benchmark's advisory lock on its database."""
    import dj_database_url
    import psycopg

    from pqh_site.database import connect_params

    db = dj_database_url.parse(database_url)
    lock = psycopg.connect(dbname=db["NAME"], autocommit=True, **connect_params(db))
    got = lock.execute("SELECT pg_try_advisory_lock(hashtext('pqh-bench-api'))").fetchone()[0]
    if not got:
        lock.close()
        raise SystemExit(
            f"another API benchmark is running against {db['NAME']}; "
            "wait for it or pass another --database-url"
        )
    return lock


def ensure_users(count: int) -> list[tuple[int, str, str, int]]:
    """Create (once) `count` users with tokens; return (user id, name, token, weight) each."""
    from rest_framework.authtoken.models import Token

    from users_app.services import api_user_create

    names = [f"benchapi_{i:05d}" for i in range(count)]
    have = {
        t.user.username: t
        for t in Token.objects.select_related("user__profile").filter(user__username__in=names)
    }
    users = []
    for i, name in enumerate(names):
        weight = 1 + i % 3
        token = have.get(name)
        if token is None or token.user.profile.weight != weight:
            user, token, _ = api_user_create(username=name, weight=weight)
        users.append((token.user_id, name, token.key, weight))
    return users


def queue_clear(prefix: str, *, everything: bool = False) -> None:
    """Empty the task table and the Redis keys under the benchmark's prefix.

    The versions of remembered credentials (`<prefix>:authv:*`) are kept unless `everything`:
    deleting them would make every web process load every user again, which a real server
    never sees between two requests.
    """
    from django.db import connection

    from tasks_app.redis_client import get_redis

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tasks_app_taskrecord, django_celery_results_taskresult")
    redis = get_redis()
    batch = []
    tag = "{" + prefix + "}"  # every key of the run starts with the prefix's hash tag
    for name in redis.scan_iter(match=f"{tag}:*", count=5000):
        if not everything and name.startswith(f"{tag}:authv:"):
            continue
        batch.append(name)
        if len(batch) >= 5000:
            redis.unlink(*batch)
            batch.clear()
    if batch:
        redis.unlink(*batch)


def _fill_slice(rows: list[tuple[str, int, int, int, float]]) -> None:
    """Record and queue `rows` (task id, user id, level, weight, submitted) in bulk."""
    from django.db import connections

    from tasks_app import scheduler
    from tasks_app.models import TaskRecord

    connections.close_all()  # a forked child opens its own connection
    for start in range(0, len(rows), 5000):
        chunk = rows[start : start + 5000]
        TaskRecord.objects.bulk_create(
            [
                TaskRecord(
                    task_id=uuid.UUID(task_id),
                    user_id=user_id,
                    level=level,
                    weight=weight,
                    count_before=0,
                    input={"prompt": "bench"},
                    submitted_at=datetime.fromtimestamp(ts, tz=UTC),
                )
                for task_id, user_id, level, weight, ts in chunk
            ]
        )
        # The queue numbers PostgreSQL gave the rows name them in the fair queue.
        seqs = dict(
            TaskRecord.objects.filter(pk__in=[uuid.UUID(row[0]) for row in chunk]).values_list(
                "pk", "queue_seq"
            )
        )
        tasks = [
            scheduler.QueuedTask(
                task_id=task_id,
                seq=seqs[uuid.UUID(task_id)],
                user_id=user_id,
                level=level,
                weight=weight,
                submitted=ts,
            )
            for task_id, user_id, level, weight, ts in chunk
        ]
        # Nothing is released (no worker runs): max_picks=0, 500 tasks per script call.
        for i in range(0, len(tasks), 500):
            scheduler.queue_add(tasks[i : i + 500], now=time.time(), max_picks=0)


def queue_fill(users: list, depth: int, *, processes: int) -> list[tuple[str, str]]:
    """Queue `depth` tasks spread over the users and levels; return (token, task id) of some.

    Rows go in with bulk_create and the fair queue gets them through scheduler.queue_add, 500
    per script call, in `processes` forked processes: no HTTP involved. Their submit times are
    the last `depth` × 0.1 ms (50 s for 500,000), so that they wait in their levels as fresh
    submissions do: a task older than PQH_MAX_WAIT_SECONDS (600 s) would go straight to the
    aged set, which is neither the usual state nor its memory (one sorted set instead of two).
    """
    from django.db import connections

    now = time.time()
    rows = [
        (
            str(uuid.uuid4()),
            users[i % len(users)][0],
            i % 6,
            users[i % len(users)][3],
            now - (depth - i) * 1e-4,
        )
        for i in range(depth)
    ]
    if depth <= 5000 or processes <= 1:
        _fill_slice(rows)
    else:
        connections.close_all()
        step = -(-depth // processes)
        pids = []
        for start in range(0, depth, step):
            pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    _fill_slice(rows[start : start + step])
                except BaseException as exc:  # report and exit the child, never return
                    print(f"fill process failed: {exc!r}", file=sys.stderr, flush=True)
                    code = 1
                os._exit(code)
            pids.append(pid)
        failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} fill processes failed")
    if depth > 5000:
        # A queue that grew over hours has been vacuumed and analysed by autovacuum; one
        # filled in a minute has not, and autovacuum would run during the measurement.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) tasks_app_taskrecord")
    tokens = {u[0]: u[2] for u in users}
    sample = rows if depth <= 2000 else random.Random(1).sample(rows, 2000)
    return [(tokens[user_id], task_id) for task_id, user_id, *_ in sample]


def prefix_memory(prefix: str, pattern: str) -> int:
    """Return the bytes Redis reports (MEMORY USAGE, exact) for the keys under prefix:pattern."""
    from tasks_app.redis_client import get_redis

    redis = get_redis()
    total = 0
    for name in redis.scan_iter(match="{" + prefix + "}:" + pattern, count=5000):
        total += redis.memory_usage(name, samples=0) or 0
    return total


def aged_count(prefix: str) -> int:
    """Tasks in the fair queue's aged set (those that waited past PQH_MAX_WAIT_SECONDS)."""
    from tasks_app.redis_client import get_redis

    return int(get_redis().zcard("{" + prefix + "}:q:aged"))


def used_memory() -> int:
    from tasks_app.redis_client import get_redis

    return int(get_redis().info("memory")["used_memory"])


def window_memory(*, users: int, per_user: int) -> dict[str, Any]:
    """Record `per_user` submissions for `users` window keys; return the bytes per entry."""
    from tasks_app import window
    from tasks_app.redis_client import get_redis

    base = 10_000_000  # user ids no real user has
    now = time.time()
    before = used_memory()
    for u in range(users):
        for k in range(per_user):
            window.window_record(user_id=base + u, member=str(uuid.uuid4()), now=now + k * 1e-3)
    keys = [window.window_key(base + u) for u in range(users)]
    exact = sum(get_redis().memory_usage(k, samples=0) or 0 for k in keys)
    delta = used_memory() - before
    get_redis().unlink(*keys)
    entries = users * per_user
    return {
        "entries": entries,
        "users": users,
        "per_user": per_user,
        "bytes_per_entry": round(exact / entries, 1),
        "bytes_per_user_window": round(exact / users, 1),
        "used_memory_delta_per_entry": round(delta / entries, 1),
    }


def probe_counts(targets: list[tuple[str, str]], *, requests: int) -> dict[str, Any]:
    """SQL queries and Redis round trips per request of each route, in this process.

    Steady state: one token's repeated requests (after its first, reported apart, which loads
    its user into this process's cache).

    The requests go through Django's test client (the same middleware, authentication and
    views as the server, on the same database and Redis). Counted: queries through the ORM
    (CaptureQueriesContext), the connection health check Django runs before the first query of
    each request (CONN_HEALTH_CHECKS: one `SELECT 1`), and Redis commands or pipelines sent
    through redis-py (each one a round trip).
    """
    from django.db import close_old_connections, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from fairqueue.testing import count_redis_round_trips

    paths = {
        "post_task": ("post", lambda t: "/task"),
        "post_api": ("post", lambda t: "/api/tasks/"),
        "get_result": ("get", lambda t: f"/result/{t[1]}"),
        "get_detail": ("get", lambda t: f"/api/tasks/{t[1]}/"),
    }
    connection = connections["default"]
    checks = {"n": 0}
    original_is_usable = type(connection).is_usable

    def counting_is_usable(self):
        checks["n"] += 1
        return original_is_usable(self)

    def one(method, path, token, task_id):
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
        close_old_connections()  # what the server does on request_started
        checks["n"] = 0
        with CaptureQueriesContext(connection) as ctx, count_redis_round_trips() as calls:
            if method == "post":
                body = {"x": {"prompt": "probe"}}
                response = client.post(path, body, content_type="application/json")
            else:
                response = client.get(path)
        return response.status_code, ctx.captured_queries, calls, checks["n"]

    out: dict[str, Any] = {}
    type(connection).is_usable = counting_is_usable
    try:
        for k, (route, (method, path)) in enumerate(paths.items()):
            # A token this process has not seen yet: its first request loads the user.
            token, task_id = targets[k % len(targets)]
            status, first_sql, first_redis, _ = one(method, path((token, task_id)), token, task_id)
            queries = redis_calls = health = ok = 0
            for _ in range(requests):
                status, sql, calls, n = one(method, path((token, task_id)), token, task_id)
                ok += status < 300
                queries += len(sql)
                redis_calls += len(calls)
                health += n
            out[route] = {
                "requests": requests,
                "ok": ok,
                "sql_queries": round(queries / requests, 2),
                "health_checks": round(health / requests, 2),
                "postgres_round_trips": round((queries + health) / requests, 2),
                "redis_round_trips": round(redis_calls / requests, 2),
                "example_sql": [q["sql"][:120] for q in sql],
                "example_redis": list(calls),
                "first_request_of_a_token": {
                    "sql_queries": len(first_sql),
                    "redis_round_trips": len(first_redis),
                    "example_redis": list(first_redis),
                },
            }
    finally:
        type(connection).is_usable = original_is_usable
    return out


# ------------------------------------------------------------------------------------------
# Processes: the server, wrk.
# ------------------------------------------------------------------------------------------


def procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.partition(":")[2].strip()
    raise SystemExit("the Procfile has no web: entry")


class Server:
    """The web server as the Procfile runs it, through honcho, in a process group of its own."""

    def __init__(
        self,
        args: argparse.Namespace,
        workdir: Path,
        *,
        command: str | None = None,
        port: int | None = None,
        tag: str = "web",
    ):
        self.args = args
        self.workdir = workdir
        self.command = command or args.web or procfile_web()
        self.port = port or args.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{tag}.log"
        self.tag = tag
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = clean_environ()
        env.update(server_settings(self.args))
        env.update(PQH_BIND=f"127.0.0.1:{self.port}", PYTHONUNBUFFERED="1")
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        for item in self.args.env or []:
            name, _, value = item.partition("=")
            env[name] = value
        return env

    def start(self, probe_token: str) -> None:
        procfile = self.workdir / f"Procfile.{self.tag}"
        procfile.write_text(f"web: {self.command}\n")
        honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or "honcho"
        self.proc = start_process(
            [honcho, "-f", str(procfile), "-d", str(ROOT), "-e", os.devnull]
            + ["start", "--no-prefix", "--no-colour", "web"],
            env=self.env(),
            log=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the web server exited:\n{tail(self.log)}")
            with contextlib.suppress(OSError):
                if http_get(self.url, "/api/usage/", token=probe_token)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the web server did not answer within 60 s:\n{tail(self.log)}")

    def processes(self) -> list[int]:
        """The server's process and its descendants (honcho starts the server in a session of
        its own, so the process group alone would miss it)."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                    children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def rss_bytes(self) -> int:
        """Resident memory of the server's processes (honcho, gunicorn's arbiter and workers)."""
        total = 0
        for pid in self.processes():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                total += int(stat[stat.rindex(")") + 2 :].split()[21]) * os.sysconf("SC_PAGE_SIZE")
        return total

    def stop(self) -> None:
        """SIGTERM honcho (it stops what it started), then SIGKILL whatever is left."""
        if self.proc is None:
            return
        started = {pid: _start_time(pid) for pid in self.processes()}
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        for pid, start in started.items():
            # Only a process that is still the one we started (pids are reused).
            if start is not None and _start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def http_get(base: str, path: str, *, token: str | None = None) -> tuple[int, bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Token {token}"} if token else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_post(base: str, path: str, body: dict) -> tuple[int, bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def write_targets(path: Path, targets: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{who} {task_id}\n" for who, task_id in targets))
    return path


def process_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each of these processes (all their threads), in seconds."""
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings: per process, so one that ended in between (a
    fill process's backend) takes nothing away, and one that started counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


# Set by main(): the benchmark database's backend pids, read through the lock's connection.
_pg_backends = None


def pg_backends_of(conn):
    """A callable returning the pids of the other client backends on the benchmark database.

    Client backends only: an autovacuum worker (after a large fill) that ends during a
    measurement would take its CPU time out of the sum and make the difference negative.
    """

    def backends() -> list[int]:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
        return [row[0] for row in rows]

    return backends


def cpu_meter(pids_of) -> dict[int, float]:
    """CPU seconds so far of a server's processes plus the benchmark database's backends."""
    backends = _pg_backends() if _pg_backends else []
    return process_cpu_seconds(list(pids_of()) + backends)


def wrk(
    url: str,
    mode: str,
    targets: Path,
    *,
    connections: int,
    seconds: float,
    pids=None,
    extra: str | None = None,
) -> dict:
    """Run wrk once; return requests/s, p50/p99 in ms, errors and, given a callable returning
    the server's pids, the CPU milliseconds per request it and its PostgreSQL backends spent."""
    threads = min(2, connections)
    cpu_before = cpu_meter(pids) if pids else None
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    cmd += ["-s", str(LUA), url, "--", mode, str(targets), *([extra] if extra else [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        # wrk itself hung: the server stopped answering (the original does at times, see
        # docs/performance.md). Recorded as a stalled round, not taken for a measurement.
        return {
            "rps": 0.0,
            "p50_ms": 0.0,
            "p90_ms": 0.0,
            "p99_ms": 0.0,
            "max_ms": 0.0,
            "requests": 0,
            "non_2xx": 0,
            "socket_errors": 0,
            "seconds": seconds,
            "cpu_ms_per_request": None,
            "stalled": True,
        }
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-1500:]}{proc.stderr}")
    # Requests wrk gave up at the deadline may still be in the server's queue: let it drain
    # before the next step changes the data under it.
    time.sleep(min(0.5, seconds / 4))
    cpu = cpu_spent(cpu_before, cpu_meter(pids)) if pids else None
    raw = json.loads(line[len("WRKJSON ") :])
    seconds_run = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "requests": raw["requests"],
        "non_2xx": raw["status"],
        "socket_errors": errors,
        "seconds": round(seconds_run, 2),
        "cpu_ms_per_request": round(1000 * cpu / raw["requests"], 3)
        if cpu is not None and raw["requests"]
        else None,
    }


# ------------------------------------------------------------------------------------------
# The runs.
# ------------------------------------------------------------------------------------------


def summarise(cells: list[dict]) -> dict:
    """Median of the rounds of one cell, plus every round.

    A round in which the server answered nothing (wrk hung, or no request completed) is a
    stall: counted, and left out of the medians unless every round stalled.
    """
    rounds = cells
    answered = [c for c in cells if c.get("requests")]
    cells = answered or cells
    return {
        "rps": round(percentile((c["rps"] for c in cells), 50), 1),
        "p50_ms": round(percentile((c["p50_ms"] for c in cells), 50), 2),
        "p99_ms": round(percentile((c["p99_ms"] for c in cells), 50), 2),
        "cpu_ms_per_request": round(percentile((c["cpu_ms_per_request"] for c in cells), 50), 3)
        if all(c.get("cpu_ms_per_request") for c in cells)
        else None,
        "non_2xx": sum(c["non_2xx"] for c in cells),
        "socket_errors": sum(c["socket_errors"] for c in cells),
        "stalled_rounds": len(rounds) - len(answered),
        "rounds": rounds,
    }


def original_targets(url: str, count: int) -> list[tuple[str, str]]:
    """Submit `count` tasks to the original (by many user names) for its GET route."""
    targets = []
    for i in range(count):
        name = f"benchapi_{i % 200:05d}"
        status, body = http_post(url, "/task", {"user_id": name, "x": "foo"})
        if status != 200:
            raise RuntimeError(f"the original answered {status} to POST /task: {body[:200]!r}")
        targets.append((name, json.loads(body)["task_id"]))
    return targets


def run_table(args, servers, users, workdir, results) -> None:
    """Route x connections, several rounds; in every cell each server (and the original) in
    turn, starting with a different one each round."""
    base_targets = queue_reset(args, users)
    tokens = write_targets(workdir / "tokens.txt", [(u[2], "-") for u in users])
    # (name, url, is the original)
    # (name, url, is the original, its pids)
    targets_of: list[tuple[str, str, bool, Any]] = [
        (name, srv.url, False, srv.processes) for name, srv in servers
    ]
    if args.original_url:
        orig_users = write_targets(workdir / "orig_users.txt", [(u[1], "-") for u in users])
        orig_get = write_targets(workdir / "orig_get.txt", original_targets(args.original_url, 200))
        original_pids = (lambda: [args.original_pid]) if args.original_pid else None
        targets_of.append(("original", args.original_url, True, original_pids))
    # Warm-up: every route once, unrecorded (imports, first connections, each process
    # remembering the users' credentials).
    get_targets = write_targets(workdir / "get.txt", base_targets)
    for _name, srv in [] if args.quick else servers:
        for route, (_label, mode, _orig) in ROUTES.items():
            targets = tokens if route.startswith("post") else get_targets
            wrk(srv.url, mode, targets, connections=8, seconds=min(2, args.duration))
    cells: dict[str, dict[str, list]] = {}
    for rnd in range(args.rounds):
        order = targets_of[rnd % len(targets_of) :] + targets_of[: rnd % len(targets_of)]
        for route, (label, mode, orig_mode) in ROUTES.items():
            for conns in args.connections:
                line = f"round {rnd + 1} {label:<22} c={conns:<3}"
                for name, url, original, pids in order:
                    if original and not orig_mode:
                        continue
                    if original:
                        targets = orig_users if route.startswith("post") else orig_get
                    else:
                        get_targets = write_targets(workdir / "get.txt", queue_reset(args, users))
                        targets = tokens if route.startswith("post") else get_targets
                    res = wrk(
                        url,
                        orig_mode if original else mode,
                        targets,
                        connections=conns,
                        seconds=args.duration,
                        pids=pids,
                    )
                    cells.setdefault(f"{route}@{conns}", {}).setdefault(name, []).append(res)
                    line += f" | {name} {res['rps']:>7.1f} req/s p99 {res['p99_ms']:>6.1f} ms"
                    if res["cpu_ms_per_request"]:
                        line += f" cpu {res['cpu_ms_per_request']:.2f} ms"
                print(line, flush=True)
    table = {}
    for key, by_target in cells.items():
        route, conns = key.split("@")
        entry: dict[str, Any] = {name: summarise(rounds) for name, rounds in by_target.items()}
        entry.update(route=ROUTES[route][0], connections=int(conns))
        if "original" in entry and entry["original"]["rps"]:
            entry["ratio"] = round(entry["pqh"]["rps"] / entry["original"]["rps"], 2)
            for name, _srv in servers[1:]:
                entry[f"ratio_{name}"] = round(entry[name]["rps"] / entry["original"]["rps"], 2)
        table[key] = entry
    results["table"] = table


def queue_reset(args, users) -> list[tuple[str, str]]:
    """Back to `--base-depth` queued tasks and empty windows; return the GET targets."""
    queue_clear(args.prefix)
    return queue_fill(users, args.base_depth, processes=1)


def run_depth(args, server, users, workdir, results) -> None:
    """Each route at 32 connections at the base depth, then with --deep-depth tasks queued."""
    conns = 32 if 32 in args.connections else args.connections[0]
    tokens = write_targets(workdir / "tokens.txt", [(u[2], "-") for u in users])

    def rounds(get_targets) -> dict[str, list]:
        """`--rounds` rounds of every route; `get_targets()`, called before each cell, sets the
        queue up for it and gives the GET routes' targets."""
        cells: dict[str, list] = {}
        for _ in range(args.rounds):
            for route, (_label, mode, _o) in ROUTES.items():
                get_targets_now = get_targets()
                targets = tokens if route.startswith("post") else get_targets_now
                cells.setdefault(route, []).append(
                    wrk(
                        server.url,
                        mode,
                        targets,
                        connections=conns,
                        seconds=args.duration,
                        pids=server.processes,
                    )
                )
        return cells

    shallow = rounds(lambda: write_targets(workdir / "get.txt", queue_reset(args, users)))
    queue_clear(args.prefix)
    mem_before, used_before = prefix_memory(args.prefix, "q:*"), used_memory()
    t = time.monotonic()
    deep_targets = queue_fill(users, args.deep_depth, processes=args.fill_processes)
    fill_s = time.monotonic() - t
    queued = prefix_memory(args.prefix, "q:*") - mem_before
    results["memory"] = {
        "queued_tasks": args.deep_depth,
        "fill_seconds": round(fill_s, 1),
        "bytes_per_queued_task": round(queued / args.deep_depth, 1),
        "used_memory_delta_per_queued_task": round(
            (used_memory() - used_before) / args.deep_depth, 1
        ),
        "aged_after_fill": aged_count(args.prefix),
    }
    print(
        f"filled {args.deep_depth} queued tasks in {fill_s:.1f} s: "
        f"{results['memory']['bytes_per_queued_task']} bytes each",
        flush=True,
    )
    write_targets(workdir / "deep.txt", deep_targets)
    deep = rounds(lambda: workdir / "deep.txt")
    table = {}
    for route, (label, _m, _o) in ROUTES.items():
        a, b = summarise(shallow[route]), summarise(deep[route])
        table[route] = {
            "route": label,
            "connections": conns,
            "shallow_depth": args.base_depth,
            "deep_depth": args.deep_depth,
            "shallow": a,
            "deep": b,
            "ratio": round(b["rps"] / a["rps"], 2) if a["rps"] else None,
        }
        print(
            f"depth {label:<22} {args.base_depth:>7}: {a['rps']:>8.1f} req/s  "
            f"{args.deep_depth:>7}: {b['rps']:>8.1f} req/s  ratio {table[route]['ratio']}  "
            f"cpu {a['cpu_ms_per_request']} -> {b['cpu_ms_per_request']} ms  "
            f"non-2xx {a['non_2xx']} / {b['non_2xx']}",
            flush=True,
        )
    results["depth"] = table
    results["memory"]["window"] = window_memory(users=args.window_users, per_user=40)
    results["memory"]["redis_used_memory"] = used_memory()
    results["memory"]["server_rss_bytes"] = server.rss_bytes()


def run_soak(args, server, users, workdir, results) -> None:
    """--soak: 10-second slices of the routes in turn at 32 connections, queue past 500k."""
    from tasks_app import scheduler

    queue_clear(args.prefix)
    t = time.monotonic()
    targets = queue_fill(users, args.soak_start, processes=args.fill_processes)
    print(f"filled {args.soak_start} queued tasks in {time.monotonic() - t:.1f} s", flush=True)
    path = write_targets(workdir / "soak.txt", targets)
    slices = []
    deadline = time.monotonic() + args.soak_seconds
    while time.monotonic() < deadline:
        res = wrk(
            server.url,
            "mix",
            path,
            connections=32,
            seconds=args.slice_seconds,
            pids=server.processes,
            extra=",".join(ROUTES[r][1] for r in args.soak_routes),
        )
        res["queued"] = scheduler.queue_waiting_count()
        slices.append(res)
        print(
            f"slice {len(slices):>3}: {res['rps']:>8.1f} req/s p99 {res['p99_ms']:>7.1f} ms "
            f"max {res['max_ms']:>7.1f} ms  non-2xx {res['non_2xx']}  queued {res['queued']}",
            flush=True,
        )
    median = percentile((s["rps"] for s in slices), 50)
    results["soak"] = {
        "connections": 32,
        "routes": [ROUTES[r][0] for r in args.soak_routes],
        "slice_seconds": args.slice_seconds,
        "start_queued": args.soak_start,
        "end_queued": slices[-1]["queued"],
        "median_rps": round(median, 1),
        "min_slice_ratio": round(min(s["rps"] for s in slices) / median, 2),
        "slices_under_80pct": sum(s["rps"] < 0.8 * median for s in slices),
        "stalls": sum(s["requests"] == 0 or s["max_ms"] > 2000 for s in slices),
        "slices": slices,
        "redis_used_memory": used_memory(),
        "redis_queue_bytes": prefix_memory(args.prefix, "q:*"),
        "server_rss_bytes": server.rss_bytes(),
    }


# Named parts of the request path: (label, a frame it runs under). A sample counts for every
# part whose frame is on its stack, so the shares overlap (auth is inside the view, etc.).
PROFILE_PARTS = [
    ("the whole Django request", "__call__ (django/core/handlers/wsgi.py)"),
    ("DRF authentication", "perform_authentication (rest_framework/views.py)"),
    ("services.task_submit", "task_submit (tasks_app/services.py)"),
    ("admission script (Redis)", "admission_admit (tasks_app/admission.py)"),
    ("fair-queue script (Redis)", "queue_add (tasks_app/scheduler.py)"),
    (
        "INSERT of the task row",
        ("_insert_row (tasks_app/services.py)", "save_base (django/db/models/base.py)"),
    ),
    (
        "task lookup",
        ("task_get_for_user (tasks_app/selectors.py)", "task_poll_for_user (tasks_app/selectors"),
    ),
    ("queue position (Redis)", "task_position (tasks_app/selectors.py)"),
    ("start estimate (2 SQL)", "task_start_estimate (tasks_app/selectors.py)"),
    ("serializer .data", "data (rest_framework/serializers.py)"),
    ("response rendering", "rendered_content (rest_framework/response.py)"),
    ("connection health check", "close_if_health_check_failed (django/db/backends/base/base.py)"),
    ("close_old_connections signals", "close_old_connections (django/db/__init__.py)"),
    ("psycopg (all SQL)", "(psycopg/"),
    ("redis-py (all Redis)", "(redis/"),
    ("gunicorn access log", "access (gunicorn/glogging.py)"),
    ("honcho relaying output", "(honcho/"),
]


def profile_parts(raw: Path) -> dict[str, Any]:
    """Shares of busy samples per named part and per package of the innermost frame."""
    total = 0
    parts = dict.fromkeys((label for label, _ in PROFILE_PARTS), 0)
    packages: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        for label, frames in PROFILE_PARTS:
            if any(frame in stack for frame in ([frames] if isinstance(frames, str) else frames)):
                parts[label] += n
        leaf = stack.rsplit(";", 1)[-1]
        where = leaf[leaf.find("(") + 1 : leaf.rfind(")")] if "(" in leaf else leaf
        package = where.split("/")[0] if "/" in where else where
        packages[package] = packages.get(package, 0) + n
    share = {k: round(100 * v / total, 1) for k, v in parts.items()} if total else {}
    top = sorted(packages.items(), key=lambda kv: -kv[1])[:12]
    return {
        "samples": total,
        "parts_pct": share,
        "self_by_package_pct": {k: round(100 * v / total, 1) for k, v in top} if total else {},
    }


def run_profile(args, server, users, workdir, results) -> None:
    """--profile: each route at 32 connections under py-spy (every server process)."""
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if pyspy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt")
    tokens = write_targets(workdir / "tokens.txt", [(u[2], "-") for u in users])
    out: dict[str, Any] = {}
    for route, (label, mode, _o) in ROUTES.items():
        get_targets = write_targets(workdir / "get.txt", queue_reset(args, users))
        targets = tokens if route.startswith("post") else get_targets
        wrk(server.url, mode, targets, connections=32, seconds=2)  # warm
        raw = workdir / f"profile_{route}.txt"
        spy = subprocess.Popen(
            # --gil: only samples holding the GIL, i.e. Python running on a CPU, not waiting for
            # PostgreSQL or Redis (nor runnable but not scheduled, on a busy machine).
            [pyspy, "record", "--format", "raw", "--nolineno", "--nonblocking", "--gil"]
            + ["-r", "250"]
            + ["-s", "-d", f"{args.profile:g}", "-o", str(raw), "--pid", str(server.proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        res = wrk(
            server.url, mode, targets, connections=32, seconds=args.profile, pids=server.processes
        )
        spy.wait(timeout=60)
        out[route] = {"route": label, "load": res, **profile_parts(raw)}
        if args.profile_dir:
            args.profile_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, args.profile_dir / raw.name)
        print(f"profile {label:<22} {res['rps']:>8.1f} req/s, {out[route]['samples']} samples")
        for name, pct in sorted(out[route]["parts_pct"].items(), key=lambda kv: -kv[1]):
            if pct:
                print(f"    {pct:5.1f}%  {name}")
    results["profile"] = out


def print_table(results: dict) -> None:
    print(
        "\nroute                  conns |   pqh req/s    p50    p99  non2xx | original req/s    p99 | ratio"
    )
    for entry in results.get("table", {}).values():
        p, o = entry["pqh"], entry.get("original")
        line = f"{entry['route']:<22} {entry['connections']:>5} | {p['rps']:>10.1f} {p['p50_ms']:>6.1f} "
        line += f"{p['p99_ms']:>6.1f} {p['non_2xx'] + p['socket_errors']:>7} |"
        if o and "ratio" in entry:
            line += f" {o['rps']:>14.1f} {o['p99_ms']:>6.1f} | {entry['ratio']:.2f}"
            if o.get("stalled_rounds"):
                line += f" (original stalled in {o['stalled_rounds']} round(s))"
        for name, other in entry.items():
            if isinstance(other, dict) and "rps" in other and name not in ("pqh", "original"):
                line += f" | {name} {other['rps']:.1f} req/s p99 {other['p99_ms']:.1f}"
        print(line)
    if "counts" in results:
        print("\nper request:            SQL  health  Redis")
        for route, c in results["counts"].items():
            print(
                f"{ROUTES[route][0]:<22} {c['sql_queries']:>4} {c['health_checks']:>7} "
                f"{c['redis_round_trips']:>6}"
            )
    if "memory" in results:
        m = results["memory"]
        print(
            f"\nRedis: {m['bytes_per_queued_task']} bytes per queued task, "
            f"{m['window']['bytes_per_entry']} bytes per window entry"
        )
    if "soak" in results:
        s = results["soak"]
        print(
            f"\nsoak: median {s['median_rps']} req/s, slowest slice {s['min_slice_ratio']} of it, "
            f"{s['slices_under_80pct']} slices under 80%, {s['stalls']} stalls, "
            f"queue {s['start_queued']} -> {s['end_queued']}, server RSS "
            f"{s['server_rss_bytes'] / 2**20:.0f} MiB, Redis {s['redis_used_memory'] / 2**20:.0f} MiB"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--soak", action="store_true", help="run the soak instead of the tables")
    p.add_argument("--duration", type=float, default=None, help="seconds per wrk round (5)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per cell (2)")
    p.add_argument("--connections", default=None, help="comma-separated (8,32,64)")
    p.add_argument("--users", type=int, default=None, help="users with tokens (200)")
    p.add_argument("--base-depth", type=int, default=None, help="queued tasks in the table (100)")
    p.add_argument("--deep-depth", type=int, default=None, help="the depth table's (500000)")
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
    p.add_argument("--port", type=int, default=8105)
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
    global _pg_backends
    _pg_backends = pg_backends_of(lock)
    workdir = Path(tempfile.mkdtemp(prefix="pqhbenchapi-"))
    server = Server(args, workdir)
    # --compare NAME=COMMAND: more servers, each on the next port, measured in turn.
    servers = [("pqh", server)]
    for i, item in enumerate(args.compare or [], 1):
        name, _, command = item.partition("=")
        servers.append((name, Server(args, workdir, command=command, port=args.port + i, tag=name)))
    results: dict[str, Any] = {
        "meta": {
            **run_meta(COMMIT_PATHS),
            "web": server.command,
            "compare": args.compare or [],
            "server_env": args.env or [],
            "original_url": args.original_url,
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
        if args.soak:
            run_soak(args, server, users, workdir, results)
        elif args.profile:
            run_profile(args, server, users, workdir, results)
        else:
            if not args.no_table:
                run_table(args, servers, users, workdir, results)
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
