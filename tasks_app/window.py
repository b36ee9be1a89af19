"""The sliding window counter: each user's submissions in the last PQH_WINDOW_SECONDS, in Redis."""

import json
import time
from dataclasses import dataclass

from django.conf import settings

from .redis_client import get_redis, get_script, key


def window_key(user_id: int) -> str:
    return key("win", user_id)


def window_record(*, user_id: int, member: str, now: float | None = None) -> int:
    """Record one submission and return how many the user made in the window before it."""
    now = time.time() if now is None else now
    script = get_script("window_record")
    return int(script(keys=[window_key(user_id)], args=[now, settings.PQH_WINDOW_SECONDS, member]))


def window_forget(*, user_id: int, member: str) -> None:
    """Take back a recorded submission that was refused after all."""
    get_redis().zrem(window_key(user_id), member)


def window_count(*, user_id: int, now: float | None = None) -> int:
    """Return the user's submissions in the window, without recording one."""
    now = time.time() if now is None else now
    script = get_script("window_count")
    return int(script(keys=[window_key(user_id)], args=[now, settings.PQH_WINDOW_SECONDS]))


def window_active_users(*, now: float | None = None) -> dict[int, int]:
    """Return {user_id: count} for every user with a live window."""
    redis = get_redis()
    prefix = window_key("")
    counts: dict[int, int] = {}
    for name in redis.scan_iter(match=f"{prefix}*", count=500):
        user_id = name[len(prefix) :]
        if user_id.isdigit():
            count = window_count(user_id=int(user_id), now=now)
            if count:
                counts[int(user_id)] = count
    return counts


def window_reset(*, user_id: int, now: float | None = None) -> int:
    """Forget every submission in the user's window; return how many were still counting.

    The next submission of the user is then counted as their first (an operator's reset).
    """
    now = time.time() if now is None else now
    name = window_key(user_id)
    # One MULTI/EXEC round trip: a submission recorded between the count and the delete would
    # otherwise be dropped without being reported.
    pipe = get_redis().pipeline(transaction=True)
    pipe.zremrangebyscore(name, "-inf", now - settings.PQH_WINDOW_SECONDS)
    pipe.zcard(name)
    pipe.delete(name, key("wc", user_id))
    return int(pipe.execute()[1])


@dataclass(frozen=True)
class WindowUsage:
    """A user's window: submissions, their charge (the count, or seconds with PQH_CHARGE=time)
    and each submission still counting as (submit time, charge), oldest first."""

    count: int
    usage: float
    entries: list[tuple[float, float]]


def window_usage(*, user_id: int, now: float | None = None) -> WindowUsage:
    """Return the user's window as it stands, in one round trip (lua/window_usage.lua)."""
    now = time.time() if now is None else now
    args = {"now": now, "seconds": settings.PQH_WINDOW_SECONDS, "charge": settings.PQH_CHARGE}
    keys = [window_key(user_id), key("wc", user_id)]
    count, usage, flat = get_script("window_usage")(keys=keys, args=[json.dumps(args)])
    entries = [(float(t), float(c)) for t, c in zip(flat[::2], flat[1::2], strict=True)]
    return WindowUsage(count=int(count), usage=float(usage), entries=entries)
