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


class Batch:
    """Script calls and plain commands sent to Redis in one round trip (a pipeline, no MULTI).

    redis-py's own pipeline asks SCRIPT EXISTS for its scripts before every batch, a round trip
    more each time. A batch sends EVALSHA at once and, only where the server answers NOSCRIPT
    (the script's first use on that server, or after a restart), loads the script and sends
    that call again by itself. So the calls of one batch must not depend on each other's order:
    a call sent again runs after the others. `execute()` returns each call's answer, passed
    through its `then`, in the order they were added; the first error is raised after every
    call has been tried, or with `raise_on_error=False` each failed call's answer is its error.
    """

    def __init__(self, client: redis.Redis, scripts: Scripts):
        self._client, self._scripts = client, scripts
        self._pipe = client.pipeline(transaction=False)
        self._calls: list[tuple[str | None, list, list, object]] = []

    def __len__(self) -> int:
        return len(self._calls)

    def script(self, name: str, *, keys, args, then=None) -> None:
        """Add a call of the script `lua/<name>.lua`."""
        keys, args = list(keys), list(args)
        self._pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
        self._calls.append((name, keys, args, then))

    def command(self, *args, then=None) -> None:
        """Add a plain command, e.g. `batch.command("PUBLISH", channel, message)`."""
        self._pipe.execute_command(*args)
        self._calls.append((None, [], list(args), then))

    def execute(self, *, raise_on_error: bool = True) -> list:
        if not self._calls:
            return []
        answers = self._pipe.execute(raise_on_error=False)
        error: Exception | None = None
        results = []
        for (name, keys, args, then), answer in zip(self._calls, answers, strict=True):
            if name is not None and isinstance(answer, redis.exceptions.NoScriptError):
                try:
                    answer = self._scripts[name](keys=keys, args=args)  # loads it, runs it
                except redis.RedisError as exc:
                    answer = exc
            if isinstance(answer, Exception):
                error = error or answer
                results.append(answer)
                continue
            results.append(then(answer) if then is not None else answer)
        self._calls.clear()
        if error is not None and raise_on_error:
            raise error
        return results
