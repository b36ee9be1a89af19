"""What the API benchmark measures against: the routes, the users, the queue's state.

Every measurement starts from a known state: `queue_reset` empties the task table and the
prefix's keys and queues `--base-depth` tasks again; `queue_fill` queues any depth (500,000 for
the depth table) without HTTP, rows with bulk_create and the fair queue through
the fair queue's add, in forked processes. The targets files tell wrk whom to submit as and which
tasks to read.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import HIGH_RATE

# route key -> (label, wrk mode of pqh, wrk mode of the original or None)
ROUTES: dict[str, tuple[str, str, str | None]] = {
    "post_task": ("POST /task", "post-task", "orig-post"),
    "post_api": ("POST /api/tasks/", "post-api", None),
    "get_result": ("GET /result/<id>", "get-result", "orig-get"),
    "get_detail": ("GET /api/tasks/<id>/", "get-detail", None),
}
# The routes the peer (bench/peer/) has, at the same paths as pqh's seed routes.
PEER_ROUTES = ("post_task", "get_result")
BENCH_SECRET = "pqh-bench-only-not-a-secret"


def server_settings(args: argparse.Namespace) -> dict[str, str]:
    """The settings of the server and of this process: the benchmark's database and prefix."""
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


def ensure_users(count: int) -> list[tuple[int, str, str, int]]:
    """Create (once) `count` users with tokens; return (user id, name, token, weight) each.

    Their request rates are set where no cell reaches them (bench.harness.HIGH_RATE): each
    request still runs the door's bucket, as a real user's does, and none is refused (at the
    default 120 submissions a minute a fast machine's cells ran out of the bucket).
    """
    from rest_framework.authtoken.models import Token

    from users_app.models import Profile
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
    Profile.objects.filter(user_id__in=[user[0] for user in users]).exclude(
        submit_rate=HIGH_RATE, read_rate=HIGH_RATE
    ).update(submit_rate=HIGH_RATE, read_rate=HIGH_RATE)
    return users


def queue_clear(prefix: str, *, everything: bool = False, keep: tuple[str, ...] = ()) -> None:
    """Empty the task table and the Redis keys under the benchmark's prefix.

    The versions of remembered credentials (`<prefix>:authv:*`) are kept unless `everything`:
    deleting them would make every web process load every user again, which a real server
    never sees between two requests. `keep` names more key kinds to keep (bench.door keeps the
    request-rate buckets, `rate`, so a rate-limited client stays refused between its phases).
    """
    from django.db import connection

    from pqh_site.core import core

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tasks_app_taskrecord, django_celery_results_taskresult")
    redis = core().redis
    batch = []
    tag = "{" + prefix + "}"  # every key of the run starts with the prefix's hash tag
    kept = () if everything else tuple(f"{tag}:{kind}:" for kind in ("authv", *keep))
    for name in redis.scan_iter(match=f"{tag}:*", count=5000):
        if kept and name.startswith(kept):
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

    from fairqueue.queue import QueuedTask
    from pqh_site.core import core
    from tasks_app.models import TaskRecord

    connections.close_all()  # a forked child opens its own connection
    # 2,000 rows a statement: PostgreSQL binds at most 65,535 parameters in one (the server binds
    # them: PQH_DB_PREPARE), and a row has over 20 columns.
    for start in range(0, len(rows), 2000):
        chunk = rows[start : start + 2000]
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
            QueuedTask(
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
            core().queue.add(tasks[i : i + 500], now=time.time(), max_picks=0)


def queue_fill(users: list, depth: int, *, processes: int) -> list[tuple[str, str]]:
    """Queue `depth` tasks spread over the users and levels; return (token, task id) of some.

    Rows go in with bulk_create and the fair queue gets them through the fair queue's add, 500
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


def queue_reset(args, users) -> list[tuple[str, str]]:
    """Back to `--base-depth` queued tasks and empty windows; return the GET targets."""
    queue_clear(args.prefix)
    return queue_fill(users, args.base_depth, processes=1)


def write_targets(path: Path, targets: list[tuple[str, str]]) -> Path:
    """Write wrk's targets, one `token task-id` (or `user-name task-id`) a line; return `path`."""
    path.write_text("".join(f"{who} {task_id}\n" for who, task_id in targets))
    return path
