"""The one Redis connection pool pqh's own keys go through, their names, and the Lua scripts."""

import re
from functools import cache
from pathlib import Path

import redis
from django.conf import settings

# Every script Redis runs for pqh is a file here, named by what it does (as BullMQ keeps its
# commands/*.lua); each opens with a block comment naming its KEYS, ARGV and return values.
LUA_DIR = Path(__file__).resolve().parent / "lua"
_INCLUDE = re.compile(r'^--- @include "([\w-]+)"[ \t]*$', re.MULTILINE)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


def get_redis() -> redis.Redis:
    """Return the shared client for REDIS_URL (one pool per process)."""
    return _client(settings.REDIS_URL)


def key_tag() -> str:
    """Return the hash tag every key of this deployment starts with: "{<PQH_REDIS_PREFIX>}".

    Redis Cluster keeps keys with the same tag in one slot, so the fair queue's scripts, which
    touch many keys at once, can run there too (the broker's lists share it: settings.py).
    """
    return "{" + settings.PQH_REDIS_PREFIX + "}"


def key(*parts: object) -> str:
    """Return a key under the deployment's tag, so no user name can collide with other keys."""
    return ":".join([key_tag(), *map(str, parts)])


@cache
def lua_source(name: str) -> str:
    """Return the script `lua/<name>.lua` with its includes inlined.

    A line `--- @include "queue"` is replaced by `lua/includes/queue.lua` (itself expanded);
    each include is inlined once per script, at its first mention, so shared helpers may
    include one another without duplicating local definitions.
    """
    seen: set[str] = set()

    def expand(path: Path) -> str:
        def include(match: re.Match) -> str:
            name = match.group(1)
            if name in seen:
                return f"-- (included above: {name})"
            seen.add(name)
            target = LUA_DIR / "includes" / f"{name}.lua"
            if not target.is_file():
                raise FileNotFoundError(f"{path.name} includes {name!r}: no file {target}")
            return expand(target)

        return _INCLUDE.sub(include, path.read_text())

    path = LUA_DIR / f"{name}.lua"
    if not path.is_file():
        raise FileNotFoundError(f"no Lua script {path}")
    return expand(path)


@cache
def _script(url: str, name: str):
    return _client(url).register_script(lua_source(name))


def get_script(name: str):
    """Return the Lua script `name` registered on the shared client.

    redis-py sends it with EVALSHA and loads it (SCRIPT LOAD) only when the server does not
    know it: once per process and server, and again after a Redis restart.
    """
    return _script(settings.REDIS_URL, name)
