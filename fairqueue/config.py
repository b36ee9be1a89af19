"""What the core is told: every setting it reads, in one object passed in (no Django here).

The Django side builds it from settings (pqh_site/core.py, from the PQH_* names in brackets) and
builds it again when a test changes a setting.
"""

from dataclasses import dataclass, field

TASKS, TIME = "tasks", "time"
CHARGES = (TASKS, TIME)


@dataclass(frozen=True)
class Config:
    """The core's settings. Defaults are the service's; seconds are floats."""

    redis_url: str = "redis://127.0.0.1:6379/0"  # REDIS_URL
    cluster: bool = False  # PQH_REDIS_CLUSTER: redis_url names a node of a Redis Cluster
    # CELERY_BROKER_URL. When it names another Redis than redis_url (always on a cluster: kombu
    # has no Cluster transport), the broker's lists are read there and the scripts, which cannot
    # reach them, are told their lengths.
    broker_url: str = ""
    # Every key starts with the hash tag "{<prefix>}" (PQH_REDIS_PREFIX): one Redis Cluster slot.
    prefix: str = "pqh"
    fairness: bool = True  # PQH_FAIRNESS: False puts every task at level 0, first come first served
    charge: str = TASKS  # PQH_CHARGE: what a task costs its user, "tasks" (1) or "time" (seconds)
    level_bounds: tuple[int, ...] = (1, 6, 16, 26, 36)  # PQH_LEVEL_BOUNDS, tasks per weight
    # PQH_LEVEL_BOUNDS_SECONDS, seconds per weight under "time"; empty: level_bounds x default_cost
    level_bounds_seconds: tuple[float, ...] = ()
    window_seconds: float = 6000.0  # PQH_WINDOW_SECONDS
    max_wait: float = 600.0  # PQH_MAX_WAIT_SECONDS, the aging bound
    release_buffer: int = 1  # PQH_RELEASE_BUFFER
    release_recover_seconds: float = 10.0  # PQH_RELEASE_RECOVER_SECONDS
    default_cost: float = 60.0  # PQH_TASK_SECONDS: the estimate of a user with no run yet
    max_queued: int = 100_000  # PQH_MAX_QUEUED
    idempotency_seconds: float = 86400.0  # PQH_IDEMPOTENCY_SECONDS
    abandon_after: float = 30.0  # PQH_RECOVER_LOST_SECONDS: an admission never queued is dropped
    estimate_keep_seconds: float = 30 * 86400.0  # PQH_HISTORY_DAYS: a user's mean run time
    full_sweep_seconds: float = 600.0  # PQH_FULL_SWEEP_SECONDS
    # The broker's Redis list of each level's Celery queue, level 0 first (kombu's key names).
    broker_queues: tuple[str, ...] = field(default=())
    broker_unacked: str = ""  # kombu's hash of delivered, unacknowledged messages

    @property
    def broker_separate(self) -> bool:
        """Whether the broker's lists live on another Redis than the fair queue's keys."""
        return bool(self.broker_url) and self.broker_url != self.redis_url

    @property
    def levels(self) -> int:
        """How many levels there are: one more than bounds."""
        return len(self.level_bounds) + 1

    def bounds(self, charge: str | None = None) -> list[float]:
        """The level bounds in the unit of `charge` (default: this deployment's)."""
        if (charge or self.charge) == TIME:
            if self.level_bounds_seconds:
                return [float(b) for b in self.level_bounds_seconds]
            return [b * self.default_cost for b in self.level_bounds]
        return [int(b) for b in self.level_bounds]
