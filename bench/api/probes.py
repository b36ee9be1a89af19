"""Measurements made in the benchmark's own process: Redis memory, and round trips per request.

The counting probe sends each route's requests through Django's test client (the server's
middleware, authentication and views, on the same database and Redis) and counts SQL queries,
connection health checks and Redis round trips (`fairqueue.testing.count_redis_round_trips`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any


def prefix_memory(prefix: str, pattern: str) -> int:
    """Return the bytes Redis reports (MEMORY USAGE, exact) for the keys under prefix:pattern."""
    from pqh_site.core import core

    redis = core().redis
    total = 0
    for name in redis.scan_iter(match="{" + prefix + "}:" + pattern, count=5000):
        total += redis.memory_usage(name, samples=0) or 0
    return total


def aged_count(prefix: str) -> int:
    """Tasks in the fair queue's aged set (those that waited past PQH_MAX_WAIT_SECONDS)."""
    from pqh_site.core import core

    return int(core().redis.zcard("{" + prefix + "}:q:aged"))


def used_memory() -> int:
    """Redis's `used_memory`, in bytes."""
    from pqh_site.core import core

    return int(core().redis.info("memory")["used_memory"])


def window_memory(*, users: int, per_user: int) -> dict[str, Any]:
    """Record `per_user` submissions for `users` window keys; return the bytes per entry."""
    from pqh_site.core import core

    base = 10_000_000  # user ids no real user has
    now = time.time()
    before = used_memory()
    redis, keys = core().redis, [core().keys.window(base + u) for u in range(users)]
    for name in keys:
        # As admit.lua records a submission (includes/window.lua, window_add): the task id
        # scored by its time, in the user's window.
        redis.zadd(name, {str(uuid.uuid4()): now + k * 1e-3 for k in range(per_user)})
    exact = sum(redis.memory_usage(k, samples=0) or 0 for k in keys)
    delta = used_memory() - before
    redis.unlink(*keys)
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
