"""Recovery bookkeeping: was Redis emptied, and how far have the recovery sweeps looked?

<tag>:epoch is written once every queued task of the store (PostgreSQL) has been offered to the
fair queue. Redis keeps it as long as it keeps the queue: if it is missing, Redis lost its data
(a restart without persistence, a flush) or the deployment is new, and the next sweep offers
every queued task again. <tag>:sweep:mark is the submit time up to which the sweeps have looked;
<tag>:sweep:full exists while the last full pass is recent.
"""

import redis
from redis import exceptions as redis_exceptions

from .config import Config
from .keys import Keys


class Sweeps:
    """The markers and the lock of the recovery sweeps of one deployment."""

    def __init__(self, client: redis.Redis, config: Config, keys: Keys):
        self.redis, self.config, self.keys = client, config, keys

    def lock(self, *, timeout: float):
        """Return the lock that lets one worker at a time sweep (redis-py's Lock, not held)."""
        return self.redis.lock(self.keys.key("sweep", "lock"), timeout=timeout, blocking=False)

    def epoch(self) -> str | None:
        """Return the epoch marker, or None if Redis lost it (and with it the queue)."""
        return self.redis.get(self.keys.key("epoch"))

    def finish_recovery(self, lock, *, now: float, mark: float) -> bool:
        """Write the epoch marker, the mark and the full-pass timer if `lock` is still held.

        A Redis restart during the recovery loses the lock, and then what the recovery queued:
        the marker is not written, so the next sweep starts over.
        """
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(lock.name)
                if not lock.owned():
                    return False
                pipe.multi()
                pipe.set(self.keys.key("epoch"), f"{now:.6f}")
                pipe.set(self.keys.key("sweep", "mark"), repr(mark))
                pipe.set(self.keys.key("sweep", "full"), "1", ex=self._full_seconds())
                pipe.execute()
                return True
            except redis_exceptions.WatchError:
                return False

    def mark(self) -> float | None:
        """Return the submit time up to which the sweeps have looked, if known."""
        value = self.redis.get(self.keys.key("sweep", "mark"))
        return None if value is None else float(value)

    def set_mark(self, mark: float) -> None:
        self.redis.set(self.keys.key("sweep", "mark"), repr(mark))

    def full_due(self) -> bool:
        """Claim the slow full pass if full_sweep_seconds have passed since the last one."""
        key = self.keys.key("sweep", "full")
        return bool(self.redis.set(key, "1", nx=True, ex=self._full_seconds()))

    def _full_seconds(self) -> int:
        return max(1, int(self.config.full_sweep_seconds))
