"""What one refused request does, counted in the benchmark's process.

The requests go through the WSGI application the server runs (`pqh_site.wsgi.application`:
the door's gate in front of Django), on the same database and Redis, from the same address as
the attackers (127.0.0.1, locked out by then). Counted per request: who answered (the gate, or
Django behind it), SQL statements through the ORM plus Django's connection health check, Redis
round trips, and log lines of every logger (`pqh.events`, and Django's `django.request` WARNING
for a 4xx; kept off the console while counting). The gate's
memory is this process's own, so the first request of a kind teaches it and the steady state
follows.
"""

from __future__ import annotations

import base64
import io
import logging
import sys
from typing import Any

PROBE_REQUESTS = 20


def _environ(method: str, path: str, authorization: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": authorization,
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


class _Counter(logging.Handler):
    """Counts the log records that reach it, by logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.count = 0
        self.by_logger: dict[str, int] = {}

    def emit(self, record) -> None:
        self.count += 1
        self.by_logger[record.name] = self.by_logger.get(record.name, 0) + 1


def probe_refusals(users: dict, tag: str, *, requests: int = PROBE_REQUESTS) -> dict[str, Any]:
    """Per attacker kind (and a normal poll): what one request costs in queries and log lines."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from fairqueue.testing import count_redis_round_trips
    from pqh_site.wsgi import application

    def basic(password: str) -> str:
        pair = f"{users['victim']['name']}:{password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    poller, reader = users["poller"], users["reader"]
    kinds = {
        "A_guess": lambda i: ("/api/usage/", basic(f"probe-{tag}-same")),
        "A_guesses": lambda i: ("/api/usage/", basic(f"probe-{tag}-fresh-{i}")),
        "B_poll": lambda i: (f"/result/{poller['task']}", f"Token {poller['token']}"),
        "normal_poll": lambda i: (f"/result/{reader['task']}", f"Token {reader['token']}"),
    }
    connection = connections["default"]
    health = {"n": 0}
    original_is_usable = type(connection).is_usable

    def counting_is_usable(self):
        health["n"] += 1
        return original_is_usable(self)

    django_calls = {"n": 0}
    inner = application.app

    def counting_app(environ, start_response):
        django_calls["n"] += 1
        return inner(environ, start_response)

    # Every log line the server would write: pqh.events has its own handler (no propagation),
    # the rest reach the root's (django.request's WARNING for each 4xx, at the server's level).
    loggers = [logging.getLogger("pqh.events"), logging.getLogger()]
    counter = _Counter()
    saved_handlers = [logger.handlers[:] for logger in loggers]

    last_sql: list[str] = []

    def one(path: str, authorization: str) -> tuple[int, int, int, int, int]:
        statuses = []
        health["n"] = django_calls["n"] = 0
        before = counter.count
        with CaptureQueriesContext(connection) as sql, count_redis_round_trips() as calls:
            body = application(
                _environ("GET", path, authorization),
                lambda status, headers, exc_info=None: statuses.append(int(status[:3])),
            )
            b"".join(body)
            if hasattr(body, "close"):
                body.close()
        last_sql[:] = [q["sql"][:100] for q in sql.captured_queries]
        return (
            statuses[0],
            len(sql.captured_queries) + health["n"],
            len(calls),
            counter.count - before,
            django_calls["n"],
        )

    out: dict[str, Any] = {}
    type(connection).is_usable = counting_is_usable
    application.app = counting_app
    for logger in loggers:
        logger.handlers = [counter]
    try:
        for kind, request in kinds.items():
            if kind == "B_poll":  # empty its bucket first (it refills at 20 a second)
                for i in range(5000):
                    if one(*request(i))[0] == 429:
                        break
            first = one(*request(0))
            counter.by_logger = {}
            totals = [0, 0, 0, 0]
            statuses: dict[int, int] = {}
            for i in range(1, requests + 1):
                status, *counts = one(*request(i))
                statuses[status] = statuses.get(status, 0) + 1
                totals = [t + c for t, c in zip(totals, counts, strict=True)]
            sql, redis_trips, logs, by_django = (round(t / requests, 2) for t in totals)
            out[kind] = {
                "requests": requests,
                "statuses": statuses,
                "answered_by_gate": round(1 - by_django, 2),
                "sql_per_request": sql,
                "redis_per_request": redis_trips,
                "log_lines_per_request": logs,
                "log_lines_by_logger": dict(counter.by_logger),
                "example_sql": list(last_sql),
                "first": dict(
                    zip(("status", "sql", "redis", "log_lines", "by_django"), first, strict=True)
                ),
            }
    finally:
        type(connection).is_usable = original_is_usable
        application.app = inner
        for logger, handlers in zip(loggers, saved_handlers, strict=True):
            logger.handlers = handlers
    return out
