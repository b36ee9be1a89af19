"""The sliding window: each user's submissions in the last window_seconds, and their charge."""

import json
import time
from dataclasses import dataclass

import redis

from .config import Config
from .keys import Keys
from .scripts import Scripts


@dataclass(frozen=True)
class WindowUsage:
    """A user's window: submissions, their charge (the count, or seconds with charge "time")
    and each submission still counting as (submit time, charge), oldest first; and, read in the
    same round trip, the user's tasks queued or running (its active set, which its cap counts)."""

    count: int
    usage: float
    entries: list[tuple[float, float]]
    active: int = 0


class Windows:
    """The users' windows of one deployment."""

    def __init__(self, client: redis.Redis, config: Config, keys: Keys, scripts: Scripts):
        self.redis, self.config, self.keys, self.scripts = client, config, keys, scripts

    def usage(self, *, user_id: int, now: float | None = None) -> WindowUsage:
        """Return the user's window as it stands, and its active tasks, in one round trip
        (lua/window_usage.lua)."""
        now = time.time() if now is None else now
        args = {"now": now, "seconds": self.config.window_seconds, "charge": self.config.charge}
        keys = [self.keys.window(user_id), self.keys.charges(user_id), self.keys.active(user_id)]
        count, usage, flat, active = self.scripts["window_usage"](
            keys=keys, args=[json.dumps(args)]
        )
        entries = [(float(t), float(c)) for t, c in zip(flat[::2], flat[1::2], strict=True)]
        return WindowUsage(
            count=int(count), usage=float(usage), entries=entries, active=int(active)
        )

    def count(self, *, user_id: int, now: float | None = None) -> int:
        """Return the user's submissions in the window, without recording one."""
        now = time.time() if now is None else now
        script = self.scripts["window_count"]
        return int(script(keys=[self.keys.window(user_id)], args=[now, self.config.window_seconds]))

    def active_users(self, *, now: float | None = None) -> dict[int, int]:
        """Return {user_id: count} for every user with a live window (a SCAN: operators only)."""
        prefix = self.keys.window("")
        counts: dict[int, int] = {}
        for name in self.redis.scan_iter(match=f"{prefix}*", count=500):
            user_id = name[len(prefix) :]
            if user_id.isdigit():
                count = self.count(user_id=int(user_id), now=now)
                if count:
                    counts[int(user_id)] = count
        return counts

    def reset(self, *, user_id: int, now: float | None = None) -> int:
        """Forget every submission in the user's window; return how many were still counting.

        The next submission of the user is then counted as their first (an operator's reset).
        """
        now = time.time() if now is None else now
        name = self.keys.window(user_id)
        # One MULTI/EXEC round trip: a submission recorded between the count and the delete would
        # otherwise be dropped without being reported.
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(name, "-inf", now - self.config.window_seconds)
        pipe.zcard(name)
        pipe.delete(name, self.keys.charges(user_id))
        return int(pipe.execute()[1])
