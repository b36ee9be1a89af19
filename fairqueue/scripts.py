"""The Lua scripts Redis runs for the core: one file each under lua/, loaded once per client.

Each script is named by what it does (as BullMQ keeps its commands/*.lua) and opens with a block
comment naming its KEYS, ARGV and return values; shared steps live in lua/includes/ and are
pulled in with a line `--- @include "name"`.
"""

import re
from functools import cache
from pathlib import Path

import redis

LUA_DIR = Path(__file__).resolve().parent / "lua"
_INCLUDE = re.compile(r'^--- @include "([\w-]+)"[ \t]*$', re.MULTILINE)


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


class Scripts:
    """The scripts registered on one client: redis-py sends each with EVALSHA and loads it
    (SCRIPT LOAD) only when the server does not know it, once per process and server, and again
    after a Redis restart."""

    def __init__(self, client: redis.Redis):
        self._client = client
        self._registered: dict[str, object] = {}

    def __getitem__(self, name: str):
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(lua_source(name))
        return script
