"""Admission: the window, the per-user cap, the global bound and idempotency, in one Redis step."""

import json
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from .broker import Broker
from .config import Config
from .keys import Keys
from .scripts import Scripts

ADMITTED, REPLAY, IN_PROGRESS, USER_CAP, QUEUE_FULL = (
    "admitted",
    "replay",
    "in_progress",
    "user_cap",
    "queue_full",
)


@dataclass(frozen=True)
class Decision:
    """admit.lua's answer: `outcome` and its number (count before, active, queued) or task id.

    An admission also says the window's usage before it and the task's cost: the count and 1
    with charge "tasks", seconds with charge "time".
    """

    outcome: str
    count: int = 0
    task_id: str = ""
    usage: float = 0.0
    cost: float = 1.0


class Admissions:
    """Deciding submissions, and the active sets that count each user's tasks against its cap."""

    def __init__(
        self,
        client: redis.Redis,
        config: Config,
        keys: Keys,
        scripts: Scripts,
        *,
        broker: Broker | None = None,
    ):
        self.redis, self.config, self.keys, self.scripts = client, config, keys, scripts
        self.broker = broker if broker is not None else Broker(client, config)

    def admit(
        self, *, user_id: int, task_id: str, now: float, user_cap: int, idempotency_key: str = ""
    ) -> Decision:
        """Decide a submission in one round trip: admit it (counted in the window), or say why not."""
        keys = [
            *self.keys.queue,
            self.keys.window(user_id),
            self.keys.active(user_id),
            self.keys.charges(user_id),
            self.keys.estimate(user_id),
        ]
        if idempotency_key:
            keys.append(self.keys.idempotency(user_id, idempotency_key))
        config = self.config
        args = {
            "task_id": task_id,
            "now": now,
            "levels": config.levels,
            "charge": config.charge,
            "default_cost": config.default_cost,
            "window_seconds": config.window_seconds,
            "user_cap": user_cap,
            "max_queued": config.max_queued,
            "idempotency_seconds": config.idempotency_seconds,
            "abandon_after": config.abandon_after,
            **self.broker.script_args(),
        }
        outcome, value, *charge = self.scripts["admit"](keys=keys, args=[json.dumps(args)])
        if outcome in (REPLAY, IN_PROGRESS):
            return Decision(outcome=outcome, task_id=value)
        if outcome == ADMITTED:
            usage, cost = charge
            return Decision(outcome=outcome, count=int(value), usage=float(usage), cost=float(cost))
        return Decision(outcome=outcome, count=int(value))

    def undo(
        self, *, user_id: int, task_id: str, idempotency_key: str = "", replay_id: str = ""
    ) -> None:
        """Take back an admission: the submission was not recorded or not queued after all.

        With `replay_id`, the Idempotency-Key turned out to name that earlier task: it does so
        again.
        """
        keys = [
            self.keys.window(user_id),
            self.keys.active(user_id),
            self.keys.key("q", "admitting"),
            self.keys.charges(user_id),
        ]
        if idempotency_key:
            keys.append(self.keys.idempotency(user_id, idempotency_key))
        args = {"task_id": task_id, "idempotency_seconds": self.config.idempotency_seconds}
        if replay_id:
            args["replay_id"] = replay_id
        self.scripts["unadmit"](keys=keys, args=[json.dumps(args)])

    def complete(self, *, task_id: str, idempotency_key: str = "", user_id: int = 0) -> None:
        """End an admission without the fair queue (fairness off: published straight away)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.keys.key("q", "admitting"), task_id)
        if idempotency_key:
            pipe.set(
                self.keys.idempotency(user_id, idempotency_key),
                f"d|{task_id}",
                ex=int(self.config.idempotency_seconds),
            )
        pipe.execute()

    def free(self, *, user_id: int, task_ids: Iterable[str]) -> None:
        """Take ended tasks out of their user's active set: they stop counting against its cap."""
        task_ids = list(task_ids)
        if task_ids:
            self.redis.zrem(self.keys.active(user_id), *task_ids)

    def restore(self, entries: Iterable[tuple[int, str, float]]) -> None:
        """Put (user id, task id, since) back in the active sets, after Redis lost them."""
        pipe = self.redis.pipeline(transaction=False)
        for user_id, task_id, since in entries:
            pipe.zadd(self.keys.active(user_id), {task_id: int(since)})
        pipe.execute()

    def active_before(self, *, cutoff: float) -> dict[int, list[str]]:
        """Return {user id: task ids} of active-set entries admitted before `cutoff`.

        A sweep over every active set (SCAN, then 500 sets a round trip): for the slow safety
        pass only, never for a request.
        """
        prefix = self.keys.active("")
        users = [
            int(name[len(prefix) :])
            for name in self.redis.scan_iter(match=f"{prefix}*", count=1000)
            if name[len(prefix) :].isdigit()
        ]
        found: dict[int, list[str]] = {}
        for i in range(0, len(users), 500):
            chunk = users[i : i + 500]
            pipe = self.redis.pipeline(transaction=False)
            for user_id in chunk:
                pipe.zrangebyscore(self.keys.active(user_id), "-inf", cutoff)
            for user_id, ids in zip(chunk, pipe.execute(), strict=True):
                if ids:
                    found[user_id] = ids
        return found
