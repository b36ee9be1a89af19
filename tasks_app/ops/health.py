"""Readiness: can this process use PostgreSQL and Redis, and does a Celery worker answer?"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from pqh_site.celery import app as celery_app

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ok or not, what went wrong, and how long it took."""

    name: str
    ok: bool
    seconds: float
    error: str = ""

    def as_dict(self) -> dict:
        out: dict = {"ok": self.ok, "seconds": round(self.seconds, 4)}
        if self.error:
            out["error"] = self.error
        return out


def _timed(name: str, probe: Callable[[], str]) -> Check:
    """Run `probe` (which returns "" when fine, or says what is wrong) and time it."""
    started = time.monotonic()
    try:
        error = probe()
    except Exception as exc:
        # The answer is public (probes carry no credentials): name the failure, log the rest.
        logger.warning("readiness check %s failed", name, exc_info=True)
        error = f"unreachable ({type(exc).__name__})"
    return Check(name=name, ok=not error, seconds=time.monotonic() - started, error=error)


def check_postgres() -> Check:
    """Run `SELECT 1` on this process's database connection."""

    def probe() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return ""

    check = _timed("postgres", probe)
    if not check.ok:
        # A broken connection must not be reused by the next request of this process.
        try:
            connection.close()
        except DatabaseError:
            pass
    return check


def check_redis(*, timeout: float) -> Check:
    """PING Redis on a connection of its own, with a timeout (the shared pool has none)."""

    def probe() -> str:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            client.ping()
        finally:
            client.close()
        return ""

    return _timed("redis", probe)


def check_workers(*, timeout: float) -> Check:
    """Ping the Celery workers of this deployment; ok as soon as one answers."""

    def probe() -> str:
        # Workers answer a ping from their main process, even with every pool slot busy.
        replies = celery_app.control.ping(timeout=timeout, limit=1)
        if not replies:
            return f"no worker answered a ping within {timeout:g} s"
        return ""

    return _timed("workers", probe)


def readiness(*, timeout: float | None = None) -> dict[str, Check]:
    """Run every check; the workers are pinged through Redis, so only if Redis answered."""
    timeout = settings.PQH_HEALTH_TIMEOUT if timeout is None else timeout
    checks = {"postgres": check_postgres(), "redis": check_redis(timeout=timeout)}
    if checks["redis"].ok:
        checks["workers"] = check_workers(timeout=timeout)
    else:
        checks["workers"] = Check(
            name="workers", ok=False, seconds=0.0, error="not checked: Redis is unreachable"
        )
    return checks
