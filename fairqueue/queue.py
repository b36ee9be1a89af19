"""The fair queue: accepted tasks wait in Redis and are released to the broker when a slot frees.

A broker message's priority cannot change once it sits in the broker, so the order is decided
at release time instead. Within a level, users are served by start-time fair queuing: each task
gets a virtual start tag on arrival (the level's virtual time, or its user's previous finish
tag if that is later; each task moves the user's finish tag on by cost / weight), and the
smallest tag goes next. Across levels level 0 goes first. A task that has waited max_wait
(aging) moves to an aged set and is released before everything else, oldest first, into the
level-0 queue. Per level one sorted set of waiting tasks scored by tag: the next pick is its
first member, and a task's queue position is a rank, in O(log n).

A release moves a task into the broker queue of its level only while fewer than release_buffer
released tasks that would run before or with it sit unstarted in the broker, so released tasks
cannot pile up ahead of a better task that arrives later. A released task that has waited
max_wait in the broker (a worse level, overtaken by better ones) stops all releases until the
workers have taken it.

With teams (lua/includes/teams.lua) the order within a level has two steps: the group furthest
behind (a team, by the team's weight, or a user in no team, by its own), then, within a team,
the member furthest behind (by the members' weights); each task's tag in the level's set is
still the one it will be picked at, so a position is still a rank.

Every step is one Lua script (lua/*.lua, the shared steps in lua/includes/queue.lua), atomic
across any number of web processes and workers. A picked task is parked in a "releasing" set
until its publish is confirmed; a pick whose releaser died before confirming is picked again
after release_recover_seconds (the worker's claim in PostgreSQL drops a duplicate).

Tasks are named in Redis by their queue number (given by PostgreSQL on INSERT). What a task
costs: 1 with charge "tasks"; with "time" its estimated seconds, and settle() charges what its
run took once it has ended (lua/settle.lua). model.py is the same algorithm in plain Python.
"""

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from .broker import Broker
from .config import Config
from .keys import Keys
from .scripts import Batch, Scripts


@dataclass(frozen=True)
class Release:
    """A task picked for release: publish it to the broker queue of `target_level`."""

    task_id: str
    target_level: int
    aged: bool
    recovered: bool


# A team's key in the fair queue: it names the team in Redis members ("t:<team>", "<team>:<m>").
TEAM_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_team(team: str) -> str:
    """Return `team` if it can name a team in the fair queue ("" for none), else ValueError."""
    if team and not TEAM_KEY.match(team):
        raise ValueError(f"a team key is 1 to 64 of A-Z a-z 0-9 _ . -, got {team!r}")
    return team


@dataclass(frozen=True)
class QueuedTask:
    """An accepted task as the fair queue needs it."""

    task_id: str
    seq: int
    user_id: int
    level: int
    weight: int
    submitted: float
    cost: float = 1.0  # 1, or the estimated seconds with charge "time"
    # Ends a submission's admission: the Redis key of its Idempotency-Key, if it had one, and
    # how long the key should still name the task.
    idempotency_key: str = ""
    idempotency_ttl: float = 0.0
    # The user's team ("" for none: the user is a group of its own, at `weight`) and the team's
    # weight; in a team, `weight` is the user's weight among the team's members. None: the team
    # the queue holds the user in now (a task queued again by a recovery sweep).
    team: str | None = None
    team_weight: int = 1

    def as_json(self) -> dict:
        row = {
            "id": self.task_id,
            "seq": self.seq,
            "user": self.user_id,
            "level": self.level,
            "weight": self.weight,
            "cost": self.cost,
            "submitted": self.submitted,
        }
        if self.team is not None:
            row["team"], row["tweight"] = check_team(self.team), self.team_weight
        return row


@dataclass(frozen=True)
class Enqueued:
    """What one enqueue did: tasks added (not already queued), picks to publish, a position."""

    added: int
    releases: list[Release]
    position: int | None


@dataclass(frozen=True)
class Place:
    """Where a task stands in the fair queue: its position, and whether aging lifted it."""

    position: int
    aged: bool


def member(seq: int) -> str:
    """Return a task's name in the fair queue's sets: its queue number, zero-padded."""
    return f"{seq:012d}"


def _releases(rows: list) -> list[Release]:
    return [
        Release(
            task_id=r[0], target_level=int(r[1]), aged=r[2] == "1", recovered=r[3] == "recovered"
        )
        for r in rows
    ]


class FairQueue:
    """The fair queue of one deployment, on one Redis client."""

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

    def _common(self, now: float) -> dict:
        return {
            "now": now,
            "levels": self.config.levels,
            "max_wait": self.config.max_wait,
            "buffer": self.config.release_buffer,
            "recover_after": self.config.release_recover_seconds,
            **self.broker.script_args(),
            # Charged estimates: hold each picked task's group until its settle (settle.lua).
            "hold": self.config.charge == "time",
        }

    def add(
        self,
        tasks: list[QueuedTask],
        *,
        now: float | None = None,
        max_picks: int = 4,
        position: bool = False,
    ) -> Enqueued:
        """Add accepted tasks (those not queued already) and return what may be released now.

        With `position`, also return the queue position of the first task after the picks.
        """
        now = time.time() if now is None else now
        keys = list(self.keys.queue)
        rows = []
        for task in tasks:
            row = task.as_json()
            if task.idempotency_key:
                keys.append(task.idempotency_key)
                row["idem"], row["idem_ttl"] = len(keys), task.idempotency_ttl
            rows.append(row)
        args = {**self._common(now), "max_picks": max_picks, "position": position, "tasks": rows}
        pos, added, picked = self.scripts["enqueue"](keys=keys, args=[json.dumps(args)])
        return Enqueued(
            added=int(added),
            releases=_releases(picked),
            position=None if int(pos) < 0 else int(pos),
        )

    def pick(
        self,
        *,
        now: float | None = None,
        max_picks: int = 4,
        started: str = "",
        batch: Batch | None = None,
    ) -> list[Release] | None:
        """Pick the tasks that may be released now (a worker took `started`, or time passed).

        With `batch`, the pick is added to it instead (its answer is then the list of Release).
        """
        now = time.time() if now is None else now
        args = {**self._common(now), "max_picks": max_picks, "started": started}
        if batch is not None:
            batch.script("pick", keys=self.keys.queue, args=[json.dumps(args)], then=_releases)
            return None
        return _releases(self.scripts["pick"](keys=self.keys.queue, args=[json.dumps(args)]))

    def confirm(self, task_ids: list[str]) -> None:
        """Forget the pending publish of released tasks whose publish succeeded."""
        if task_ids:
            self.redis.zrem(self.keys.key("q", "rel"), *task_ids)

    def cancel(
        self,
        *,
        task_id: str,
        seq: int,
        level: int,
        user_id: int | None = None,
        refund: bool = False,
    ) -> bool:
        """Remove a task that has not been released; return False if it was already released.

        With `refund` (charge "time") its charge also leaves its user's window, released or not.
        """
        args = {"levels": self.config.levels, "id": task_id, "seq": seq, "level": level}
        args["refund"] = bool(refund and user_id is not None)
        owner = user_id or 0
        keys = [*self.keys.queue, self.keys.window(owner), self.keys.charges(owner)]
        return bool(self.scripts["cancel"](keys=keys, args=[json.dumps(args)]))

    def settle(
        self, *, task_id: str, user_id: int, level: int, weight: int, charged: float, seconds: float
    ) -> float:
        """Charge an ended task what its run took instead of its estimate (charge "time").

        Corrects the user's window and the virtual time of its waiting tasks at `level`, and
        teaches the user's recent mean run time; returns the new mean. See lua/settle.lua.
        """
        keys, args = self._settle_call(
            task_id=task_id, user_id=user_id, level=level, weight=weight, charged=charged,
            seconds=seconds,
        )  # fmt: skip
        _, mean = self.scripts["settle"](keys=keys, args=args)
        return float(mean)

    def settle_in(self, batch: Batch, **call) -> None:
        """Add settle(**call) to `batch` (its answer there: the new mean), so that a worker's
        end costs one round trip with it."""
        keys, args = self._settle_call(**call)
        batch.script("settle", keys=keys, args=args, then=lambda answer: float(answer[1]))

    def _settle_call(
        self, *, task_id: str, user_id: int, level: int, weight: int, charged: float, seconds: float
    ) -> tuple[list[str], list[str]]:
        args = {
            "levels": self.config.levels,
            "id": task_id,
            "user": user_id,
            "level": level,
            "weight": weight,
            "charged": charged,
            "seconds": seconds,
            "keep": self.config.estimate_keep_seconds,
            "follow": self.config.charge == "time",
        }
        keys = [
            *self.keys.queue,
            self.keys.window(user_id),
            self.keys.charges(user_id),
            self.keys.estimate(user_id),
        ]
        return keys, [json.dumps(args)]

    def reweight(self, *, user_id: int, weight: int) -> int:
        """Respace a user's waiting tasks for its new weight; return how many moved."""
        args = {"levels": self.config.levels, "user": user_id, "weight": weight}
        return int(self.scripts["reweight"](keys=self.keys.queue, args=[json.dumps(args)]))

    def reweight_team(self, *, team: str, weight: int) -> int:
        """Respace a team's waiting tasks for its new weight; return how many moved
        (lua/reweight_team.lua)."""
        args = {"levels": self.config.levels, "team": check_team(team), "weight": weight}
        return int(self.scripts["reweight_team"](keys=self.keys.queue, args=[json.dumps(args)]))

    def set_team(self, *, user_id: int, team: str, weight: int, team_weight: int = 1) -> int:
        """Put a user in `team` ("" for none) with its weight and the team's: its waiting tasks
        leave their old group and join the new one as if queued now (lua/set_team.lua); return
        how many moved."""
        args = {
            "levels": self.config.levels,
            "user": user_id,
            "team": check_team(team),
            "weight": weight,
            "team_weight": team_weight,
        }
        return int(self.scripts["set_team"](keys=self.keys.queue, args=[json.dumps(args)]))

    def estimate(self, user_id: int) -> float | None:
        """Return the user's recent mean run time in seconds, or None with no history."""
        mean = self.redis.hget(self.keys.estimate(user_id), "mean")
        return None if mean is None else float(mean)

    def places(
        self, tasks: Iterable[tuple[str, int, int]], *, now: float | None = None
    ) -> list[Place | None]:
        """Return the place of each (task id, queue number, level), in one round trip.

        None for a task the fair queue does not hold (it has started, or it is lost and will be
        queued again by the recovery sweep). See docs/fairness.md for what a position counts.
        """
        tasks = [list(t) for t in tasks]
        if not tasks:
            return []
        now = time.time() if now is None else now
        args = {**self._common(now), "tasks": tasks}
        answers = self.scripts["positions"](keys=self.keys.queue, args=[json.dumps(args)])
        return [
            None if int(n) < 0 else Place(position=int(n), aged=bool(int(aged)))
            for n, aged in answers
        ]

    def waiting_count(self) -> int:
        """Return how many tasks wait in the fair queue, not yet released."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(self.keys.key("q", "aged"))
        for level in range(self.config.levels):
            pipe.zcard(self.keys.level(level))
        return sum(int(n) for n in pipe.execute())

    def broker_lengths(self) -> list[int]:
        """Return, per level, the released tasks in the broker not yet taken by a worker."""
        return self.broker.lengths()
