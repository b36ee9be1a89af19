"""Notices: whoever waits for a task learns, at once, that it moved (started, progress, ended).

Every path that changes what a waiter sees announces it on one Redis pub/sub channel
(`{P}:notices`), after its transaction commits, so a waiter that re-reads PostgreSQL on the
notice finds the new state: a task started (services.runs.task_claim's caller), reported
progress, ended (task_finish, task_cancel, the reconciliation's agreements), or went back to
the queue (reconciliation). A notice carries only the task's id and what happened; PostgreSQL
stays the truth. Best effort: if Redis cannot take it, waiters still see the state when they
re-read (at the latest when their wait times out, or when their subscriber reconnects).
"""

import json
import logging

import redis
from django.db import transaction

from pqh_site.core import core

logger = logging.getLogger(__name__)

STARTED, PROGRESS, ENDED, QUEUED = "started", "progress", "ended", "queued"


def _message(task_id: str, kind: str) -> str:
    return json.dumps({"task": task_id, "kind": kind})


def _publish(task_id: str, kind: str) -> None:
    try:
        the_core = core()
        the_core.redis.publish(the_core.keys.notices, _message(task_id, kind))
    except redis.RedisError as exc:
        logger.warning("could not announce that task %s %s: %s", task_id, kind, exc)


def add_to(batch, task_id: object, kind: str) -> None:
    """Add the announcement to a Redis batch (fairqueue.scripts.Batch) its caller sends after
    the commit: the worker sends a task's notices with its other Redis steps, in one round trip.
    """
    batch.command("PUBLISH", core().keys.notices, _message(str(task_id), kind))


def announce(task_id: object, kind: str) -> None:
    """Announce that a task moved, once the current transaction (if any) has committed."""
    transaction.on_commit(lambda: _publish(str(task_id), kind))
