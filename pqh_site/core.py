"""The fair-queue core (fairqueue) of this deployment, built from the settings.

One Core per process, built on first use and built again when a setting changes (Django's
setting_changed signal, which override_settings sends in tests). The Redis client of a URL is
kept across rebuilds, so its connection pool and loaded scripts are not thrown away.
"""

from functools import cache

import redis
from django.conf import settings
from django.core.signals import setting_changed

from fairqueue.config import Config
from fairqueue.core import Core, redis_client


@cache
def _client(url: str, cluster: bool = False) -> redis.Redis:
    return redis_client(url, cluster=cluster)


def config_from_settings() -> Config:
    """The core's Config, read from the PQH_* settings (and the broker's key names)."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return Config(
        redis_url=settings.REDIS_URL,
        cluster=settings.PQH_REDIS_CLUSTER,
        broker_url=settings.CELERY_BROKER_URL,
        prefix=settings.PQH_REDIS_PREFIX,
        fairness=settings.PQH_FAIRNESS,
        charge=settings.PQH_CHARGE,
        level_bounds=tuple(settings.PQH_LEVEL_BOUNDS),
        level_bounds_seconds=tuple(float(b) for b in settings.PQH_LEVEL_BOUNDS_SECONDS),
        window_seconds=float(settings.PQH_WINDOW_SECONDS),
        max_wait=float(settings.PQH_MAX_WAIT_SECONDS),
        release_buffer=settings.PQH_RELEASE_BUFFER,
        release_recover_seconds=float(settings.PQH_RELEASE_RECOVER_SECONDS),
        default_cost=float(settings.PQH_TASK_SECONDS),
        max_queued=settings.PQH_MAX_QUEUED,
        idempotency_seconds=float(settings.PQH_IDEMPOTENCY_SECONDS),
        abandon_after=float(settings.PQH_RECOVER_LOST_SECONDS),
        estimate_keep_seconds=settings.PQH_HISTORY_DAYS * 86400.0,
        full_sweep_seconds=float(settings.PQH_FULL_SWEEP_SECONDS),
        broker_queues=tuple(f"{prefix}{name}" for name in settings.PQH_LEVEL_QUEUES),
        broker_unacked=f"{prefix}unacked",
    )


@cache
def core() -> Core:
    """This deployment's core."""
    config = config_from_settings()
    broker = _client(config.broker_url) if config.broker_separate else None
    return Core(config, _client(config.redis_url, config.cluster), broker)


def _rebuild(**kwargs) -> None:
    core.cache_clear()


setting_changed.connect(_rebuild, dispatch_uid="pqh-core-rebuild")
