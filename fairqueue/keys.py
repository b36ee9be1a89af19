"""Every Redis key the core names, in one place (as BullMQ keeps its key names in one module).

Every key starts with the deployment's hash tag "{<prefix>}": Redis Cluster keeps keys with one
tag in one slot, so scripts that touch many keys at once can run there too (the broker's lists
share it: the Celery setting global_keyprefix). No script builds a key name: each gets every
key it touches in KEYS, and this module says which, in which order.
"""

from functools import cached_property

from .config import Config

# The fair queue's own keys, in the order lua/includes/queue.lua names them, then per level.
QUEUE_KEYS = ("task", "aged", "vt", "out", "rel", "brk", "admitting", "grp", "teams", "hold")
LEVEL_KEYS = ("lvl", "age", "fin", "uw", "in", "mf", "tw", "tv")


class Keys:
    """The key layout of one deployment."""

    def __init__(self, config: Config):
        self.config = config
        self.tag = "{" + config.prefix + "}"

    def key(self, *parts: object) -> str:
        """A key under the deployment's tag, so no user name can collide with other keys."""
        return ":".join([self.tag, *map(str, parts)])

    @cached_property
    def queue(self) -> tuple[str, ...]:
        """The fair queue's keys in the order every queue script takes them in KEYS: 10 + 8L of
        its own (lua/includes/queue.lua names each), then the broker's list of each level."""
        names = [self.key("q", name) for name in QUEUE_KEYS]
        for level in range(self.config.levels):
            names += [self.key("q", part, level) for part in LEVEL_KEYS]
        return (*names, *self.config.broker_queues)

    def level(self, level: int) -> str:
        """The sorted set of the waiting tasks of a level."""
        return self.key("q", "lvl", level)

    def window(self, user_id: object) -> str:
        """A user's window: its submissions in the last window_seconds (zset)."""
        return self.key("win", user_id)

    def charges(self, user_id: object) -> str:
        """The charge of each submission in a user's window, and their sum (hash; time mode)."""
        return self.key("wc", user_id)

    def estimate(self, user_id: object) -> str:
        """A user's recent mean run time (hash: n, mean)."""
        return self.key("est", user_id)

    def active(self, user_id: object) -> str:
        """A user's tasks queued or running, counted against its cap (zset)."""
        return self.key("act", user_id)

    def idempotency(self, user_id: object, idempotency_key: str) -> str:
        """What a user's Idempotency-Key names: a task in progress or done (string)."""
        return self.key("idem", user_id, idempotency_key)

    @property
    def notices(self) -> str:
        """The pub/sub channel on which a task's moves are announced (started, progress, ended)."""
        return self.key("notices")

    def rate(self, scope: str, ident: object) -> str:
        """A request-rate bucket of a client in a scope (string: its TAT)."""
        return self.key("rate", scope, ident)
