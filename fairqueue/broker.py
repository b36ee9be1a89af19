"""What the broker holds in Redis: tasks waiting in a level queue or delivered, not acked.

kombu's Redis transport keeps a queue as a list of JSON messages and every message delivered
to a worker but not yet acknowledged in the hash `unacked` (delivery tag -> JSON
[message, exchange, routing key]) until the worker acknowledges it, or until the visibility
timeout passes and kombu puts it back in its queue. A task whose id is in neither will never be
delivered again by the broker.
"""

import json
import logging

import redis

from .config import Config

logger = logging.getLogger(__name__)


def _task_id(message: object) -> str | None:
    """Return the Celery task id of a kombu message (protocol 2 keeps it in the headers)."""
    if isinstance(message, dict):
        headers = message.get("headers")
        if isinstance(headers, dict) and headers.get("id"):
            return str(headers["id"])
    return None


def _loads(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        logger.warning("a broker entry is not JSON; ignoring it")
        return None


class Broker:
    """Reads of the broker's keys (the core never writes them: Celery does), on the broker's
    own client: the fair queue's when both share one Redis, a plain Redis's beside a cluster."""

    def __init__(self, client: redis.Redis, config: Config):
        self.redis, self.config = client, config

    def lengths(self) -> list[int]:
        """Return, per level, the released tasks in the broker not yet taken by a worker."""
        pipe = self.redis.pipeline(transaction=False)
        for name in self.config.broker_queues:
            pipe.llen(name)
        return [int(n) for n in pipe.execute()]

    def script_args(self) -> dict:
        """What a queue script must be told of the broker: nothing when it shares the fair
        queue's Redis (the script reads the lists itself, atomically), else the lists' lengths
        read just before it (one round trip to the broker)."""
        if not self.config.broker_separate:
            return {}
        return {"broker_lengths": self.lengths()}

    def task_ids(self, *, limit: int = 10_000) -> set[str] | None:
        """Return the ids of the tasks whose message the broker holds; None if it cannot tell.

        One atomic round trip (MULTI), so a message kombu moves from `unacked` back to its queue
        is seen in one place or the other. A level queue longer than `limit` (a FIFO backlog
        with fairness off) is not read, and the answer is None: callers must then assume the
        broker may still hold any task.
        """
        pipe = self.redis.pipeline(transaction=True)
        for name in self.config.broker_queues:
            pipe.llen(name)
            pipe.lrange(name, 0, limit - 1)
        pipe.hvals(self.config.broker_unacked)
        answers = pipe.execute()
        ids: set[str] = set()
        for length, entries in zip(answers[0:-1:2], answers[1:-1:2], strict=True):
            if length > limit:
                return None
            ids.update(filter(None, (_task_id(_loads(entry)) for entry in entries)))
        for entry in answers[-1]:
            delivered = _loads(entry)
            if isinstance(delivered, list) and delivered:
                task_id = _task_id(delivered[0])
                if task_id:
                    ids.add(task_id)
        return ids
