"""Redis memory per waiting task, per active-set entry and per window entry, on a private server.

Starts a redis-server of its own on a free port (nothing kept on disk), fills it through pqh's
own scripts (admit.lua for the window and the active set, enqueue.lua for the fair queue) and
reports the growth of `used_memory` per waiting task, with a breakdown by key (MEMORY USAGE),
for three shapes of queue: many users at the default cap, many users with ten tasks each, and
one user with a long backlog. Each task is admitted and queued as a submission is, at the
level the policy gives. No PostgreSQL is needed: queue numbers are made up as it would give them.

    .venv/bin/python bench/redis_memory.py              # 100,000 tasks per shape
    .venv/bin/python bench/redis_memory.py --tasks 20000
    .venv/bin/python bench/redis_memory.py --charge time   # windows keep each task's seconds

Writes bench/results/redis_memory.json.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import run_meta  # noqa: E402
from fairqueue.testing import PrivateRedis  # noqa: E402


def used(client) -> int:
    return int(client.info("memory")["used_memory"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="waiting tasks per shape")
    parser.add_argument("--charge", choices=("tasks", "time"), default="tasks", help="PQH_CHARGE")
    parser.add_argument("--out", default=None, help="bench/results/redis_memory[_time].json")
    args = parser.parse_args()
    suffix = "" if args.charge == "tasks" else f"_{args.charge}"
    args.out = args.out or str(ROOT / "bench" / "results" / f"redis_memory{suffix}.json")

    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="pqh-redis-memory-"))).start()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="pqh_site.settings",
        PQH_SECRET_KEY="bench-only",
        REDIS_URL=server.url,
        PQH_REDIS_PREFIX="pqh",
        PQH_USER_MAX_ACTIVE="100000000",
        PQH_MAX_QUEUED="100000000",
        PQH_CHARGE=args.charge,
    )
    try:
        import django

        django.setup()
        from fairqueue.policy import level_for
        from fairqueue.queue import QueuedTask
        from pqh_site.core import core

        client = core().redis
        now = time.time()
        results = {}
        # (users, tasks per user): every user's tasks get the levels the policy gives a user of
        # weight 1 submitting that many in a row.
        per_user = {
            f"{args.tasks // 100:,} users x 100 tasks (the default cap)": 100,
            f"{args.tasks // 10:,} users x 10 tasks": 10,
            "1 user x all tasks (cap lifted)": args.tasks,
        }
        groups = ["q:task", "q:lvl:*", "q:age:*", "q:uw:*", "q:fin:*", "win:*", "wc:*", "act:*"]
        for name, n in per_user.items():
            client.flushall()
            base = used(client)
            batch = []
            for i in range(args.tasks):
                user, k = 1 + i // n, i % n
                task_id = f"{i:08x}-0000-4000-8000-{i:012x}"
                at = now + i * 1e-4
                admitted = core().admissions.admit(
                    user_id=user, task_id=task_id, now=at, user_cap=10**9
                )
                batch.append(
                    QueuedTask(
                        task_id=task_id,
                        seq=i + 1,
                        user_id=user,
                        level=level_for(count_before=k, weight=1),
                        weight=1,
                        submitted=at,
                        cost=admitted.cost,
                    )
                )
                if len(batch) == 1000:
                    core().queue.add(batch, now=at, max_picks=0)
                    batch = []
            if batch:
                core().queue.add(batch, now=now, max_picks=0)
            total = used(client) - base
            assert core().queue.waiting_count() == args.tasks
            assert client.zcard("{pqh}:q:admitting") == 0
            breakdown = {}
            for group in groups:
                names = client.scan_iter("{pqh}:" + group, 1000)
                size = sum(client.memory_usage(k, samples=0) or 0 for k in names)
                breakdown[group] = round(size / args.tasks, 1)
            results[name] = {
                "tasks": args.tasks,
                "bytes_per_waiting_task": round(total / args.tasks, 1),
                "fair_queue_bytes_per_task": round(
                    sum(v for k, v in breakdown.items() if k.startswith("q:")), 1
                ),
                "window_bytes_per_entry": round(breakdown["win:*"] + breakdown["wc:*"], 1),
                "active_set_bytes_per_entry": breakdown["act:*"],
                "by_key_group": breakdown,
            }
            print(name, json.dumps(results[name]))
        info = client.info("server")
        out = {
            "meta": {
                **run_meta(),
                "redis": info["redis_version"],
                "machine": platform.platform(),
                "charge": args.charge,
            },
            "shapes": results,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
