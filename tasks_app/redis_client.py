"""The one Redis connection pool pqh's own keys go through, and their names."""

from functools import cache

import redis
from django.conf import settings


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


def get_redis() -> redis.Redis:
    """Return the shared client for REDIS_URL (one pool per process)."""
    return _client(settings.REDIS_URL)


def key(*parts: object) -> str:
    """Return a key under PQH_REDIS_PREFIX, so no user name can collide with other keys."""
    return ":".join([settings.PQH_REDIS_PREFIX, *map(str, parts)])


@cache
def _script(url: str, source: str):
    return _client(url).register_script(source)


def get_script(source: str):
    """Return a registered Lua script (EVALSHA, loaded on first use) on the shared client."""
    return _script(settings.REDIS_URL, source)
