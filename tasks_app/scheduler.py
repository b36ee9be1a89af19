"""The fair queue: accepted tasks wait in Redis and are released to Celery when a slot frees.

A Celery message's priority cannot change once it sits in the broker, so the order is decided
at release time instead. Within a level, users are served by start-time fair queuing: each task
gets a virtual start tag on arrival (the level's virtual time, or its user's previous finish
tag if that is later; each task moves the user's finish tag on by 1/weight), and the smallest
tag goes next. Across levels level 0 goes first. A task that has waited PQH_MAX_WAIT_SECONDS
(aging) moves to an aged set and is released before everything else, oldest first, into the
level-0 queue. Per level one sorted set of waiting tasks scored by tag: the next pick is its
first member, and a task's queue position is a rank, in O(log n).

A release moves a task into the Celery queue of its level only while fewer than
PQH_RELEASE_BUFFER released tasks that would run before or with it sit unstarted in the
broker, so released tasks cannot pile up ahead of a better task that arrives later. A released
task that has waited PQH_MAX_WAIT_SECONDS in the broker (a worse level, overtaken by better
ones) stops all releases until the workers have taken it.

Every step is one Lua script (lua/*.lua, the shared steps in lua/includes/queue.lua), atomic
across any number of web processes and workers. A picked task is parked in a "releasing" set
until its publish is confirmed; a pick whose releaser died before confirming is picked again
after PQH_RELEASE_RECOVER_SECONDS (the worker's claim in PostgreSQL drops a duplicate).

Tasks are named in Redis by their queue number (TaskRecord.queue_seq), which PostgreSQL gives
on INSERT. Every key shares the deployment's hash tag ({PQH_REDIS_PREFIX}), and every script
gets every key it touches in KEYS (queue_keys() gives the fair queue's, in the order
lua/includes/queue.lua names them), so the queue can live on one Redis Cluster slot.

What a task costs: 1 with PQH_CHARGE=tasks; with PQH_CHARGE=time its estimated seconds, and
queue_settle() charges what its run took once it has ended (lua/settle.lua).
"""

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from redis import exceptions as redis_exceptions

from .redis_client import get_redis, get_script, key, key_tag


@dataclass(frozen=True)
class Release:
    """A task picked for release: publish it to the Celery queue of `target_level`."""

    task_id: str
    target_level: int
    aged: bool
    recovered: bool


@dataclass(frozen=True)
class QueuedTask:
    """An accepted task as the fair queue needs it."""

    task_id: str
    seq: int
    user_id: int
    level: int
    weight: int
    submitted: float
    cost: float = 1.0  # 1, or the estimated seconds with PQH_CHARGE=time
    # Ends a submission's admission: the Redis key of its Idempotency-Key, if it had one, and
    # how long the key should still name the task.
    idempotency_key: str = ""
    idempotency_ttl: float = 0.0

    def as_json(self) -> dict:
        return {
            "id": self.task_id,
            "seq": self.seq,
            "user": self.user_id,
            "level": self.level,
            "weight": self.weight,
            "cost": self.cost,
            "submitted": self.submitted,
        }


@dataclass(frozen=True)
class Enqueued:
    """What one enqueue did: tasks added (not already queued), picks to publish, a position."""

    added: int
    releases: list[Release]
    position: int | None


def member(seq: int) -> str:
    """Return a task's name in the fair queue's sets: its queue number, zero-padded."""
    return f"{seq:012d}"


def broker_queue_keys() -> list[str]:
    """Return the broker's Redis list of each level queue, level 0 first."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return [f"{prefix}{name}" for name in settings.PQH_LEVEL_QUEUES]


def level_keys() -> list[str]:
    """Return the sorted set of waiting tasks of each level, level 0 first."""
    return [key("q", "lvl", level) for level in range(settings.PQH_LEVELS)]


@cache
def _queue_keys(tag: str, levels: int, brokers: tuple[str, ...]) -> tuple[str, ...]:
    names = [key("q", name) for name in ("task", "aged", "vt", "out", "rel", "brk", "admitting")]
    for level in range(levels):
        names += [key("q", part, level) for part in ("lvl", "age", "fin", "uw")]
    return (*names, *brokers)


def queue_keys() -> list[str]:
    """Return the fair queue's keys in the order every queue script takes them in KEYS.

    7 + 5L keys (lua/includes/queue.lua names each); a script's own keys follow them.
    """
    return list(_queue_keys(key_tag(), settings.PQH_LEVELS, tuple(broker_queue_keys())))


def _common(now: float) -> dict:
    return {
        "now": now,
        "levels": settings.PQH_LEVELS,
        "max_wait": settings.PQH_MAX_WAIT_SECONDS,
        "buffer": settings.PQH_RELEASE_BUFFER,
        "recover_after": settings.PQH_RELEASE_RECOVER_SECONDS,
    }


def _releases(rows: list) -> list[Release]:
    return [
        Release(
            task_id=r[0], target_level=int(r[1]), aged=r[2] == "1", recovered=r[3] == "recovered"
        )
        for r in rows
    ]


def queue_add(
    tasks: list[QueuedTask], *, now: float | None = None, max_picks: int = 4, position: bool = False
) -> Enqueued:
    """Add accepted tasks (those not queued already) and return what may be released now.

    With `position`, also return the queue position of the first task after the picks.
    """
    now = time.time() if now is None else now
    keys = queue_keys()
    rows = []
    for task in tasks:
        row = task.as_json()
        if task.idempotency_key:
            keys.append(task.idempotency_key)
            row["idem"], row["idem_ttl"] = len(keys), task.idempotency_ttl
        rows.append(row)
    args = {**_common(now), "max_picks": max_picks, "position": position, "tasks": rows}
    pos, added, picked = get_script("enqueue")(keys=keys, args=[json.dumps(args)])
    return Enqueued(
        added=int(added),
        releases=_releases(picked),
        position=None if int(pos) < 0 else int(pos),
    )


def queue_enqueue(
    *,
    task_id: str,
    seq: int,
    user_id: int,
    level: int,
    weight: int,
    submitted: float,
    cost: float = 1.0,
    max_picks: int = 4,
) -> list[Release]:
    """Add one accepted task to the fair queue and return what may be released now."""
    task = QueuedTask(
        task_id=task_id,
        seq=seq,
        user_id=user_id,
        level=level,
        weight=weight,
        submitted=submitted,
        cost=cost,
    )
    return queue_add([task], now=submitted, max_picks=max_picks).releases


def queue_pick(*, now: float | None = None, max_picks: int = 4, started: str = "") -> list[Release]:
    """Pick the tasks that may be released now (a worker took `started`, or time passed)."""
    now = time.time() if now is None else now
    args = {**_common(now), "max_picks": max_picks, "started": started}
    return _releases(get_script("pick")(keys=queue_keys(), args=[json.dumps(args)]))


def queue_confirm(task_ids: list[str]) -> None:
    """Forget the pending publish of released tasks whose publish to Celery succeeded."""
    if task_ids:
        get_redis().zrem(key("q", "rel"), *task_ids)


def queue_cancel(
    *, task_id: str, seq: int, level: int, user_id: int | None = None, refund: bool = False
) -> bool:
    """Remove a task that has not been released; return False if it was already released.

    With `refund` (PQH_CHARGE=time) its charge also leaves its user's window, released or not.
    """
    args = {"levels": settings.PQH_LEVELS, "id": task_id, "seq": seq, "level": level}
    args["refund"] = bool(refund and user_id is not None)
    keys = [*queue_keys(), key("win", user_id or 0), key("wc", user_id or 0)]
    return bool(get_script("cancel")(keys=keys, args=[json.dumps(args)]))


def queue_settle(
    *, task_id: str, user_id: int, level: int, weight: int, charged: float, seconds: float
) -> float:
    """Charge an ended task what its run took instead of its estimate (PQH_CHARGE=time).

    Corrects the user's window and the virtual time of its waiting tasks at `level`, and
    teaches the user's recent mean run time; returns the new mean. See lua/settle.lua.
    """
    args = {
        "levels": settings.PQH_LEVELS,
        "id": task_id,
        "user": user_id,
        "level": level,
        "weight": weight,
        "charged": charged,
        "seconds": seconds,
        "keep": settings.PQH_HISTORY_DAYS * 86400,
    }
    keys = [*queue_keys(), key("win", user_id), key("wc", user_id), key("est", user_id)]
    _, mean = get_script("settle")(keys=keys, args=[json.dumps(args)])
    return float(mean)


def queue_reweight(*, user_id: int, weight: int) -> int:
    """Respace a user's waiting tasks for its new weight; return how many moved."""
    args = {"levels": settings.PQH_LEVELS, "user": user_id, "weight": weight}
    return int(get_script("reweight")(keys=queue_keys(), args=[json.dumps(args)]))


def queue_estimate(user_id: int) -> float | None:
    """Return the user's recent mean run time in seconds, or None with no history."""
    mean = get_redis().hget(key("est", user_id), "mean")
    return None if mean is None else float(mean)


@dataclass(frozen=True)
class Place:
    """Where a task stands in the fair queue: its position, and whether aging lifted it."""

    position: int
    aged: bool


def queue_places(
    tasks: Iterable[tuple[str, int, int]], *, now: float | None = None
) -> list[Place | None]:
    """Return the place of each (task id, queue number, level), in one round trip.

    None for a task the fair queue does not hold (it has started, or it is lost and will be
    queued again by the recovery sweep). See docs/fairness.md for what a position counts.
    """
    tasks = [list(t) for t in tasks]
    if not tasks:
        return []
    now = time.time() if now is None else now
    args = {**_common(now), "tasks": tasks}
    answers = get_script("positions")(keys=queue_keys(), args=[json.dumps(args)])
    return [
        None if int(n) < 0 else Place(position=int(n), aged=bool(int(aged))) for n, aged in answers
    ]


def queue_unknown(tasks: Iterable[tuple[str, int]]) -> list[str]:
    """Return the ids of the (task id, queue number) pairs the fair queue holds nowhere."""
    tasks = list(tasks)
    if not tasks:
        return []
    pipe = get_redis().pipeline(transaction=False)
    for task_id, seq in tasks:
        pipe.hexists(key("q", "task"), member(seq))
        pipe.hexists(key("q", "out"), task_id)
    answers = pipe.execute()
    return [
        task_id
        for (task_id, _), waiting, released in zip(tasks, answers[::2], answers[1::2], strict=True)
        if not waiting and not released
    ]


def queue_waiting_count() -> int:
    """Return how many tasks wait in the fair queue, not yet released."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.zcard(key("q", "aged"))
    for name in level_keys():
        pipe.zcard(name)
    return sum(int(n) for n in pipe.execute())


def queue_broker_lengths() -> list[int]:
    """Return, per level, how many released tasks sit in the broker not yet taken by a worker."""
    pipe = get_redis().pipeline(transaction=False)
    for name in broker_queue_keys():
        pipe.llen(name)
    return [int(n) for n in pipe.execute()]


# --- Recovery bookkeeping: was Redis emptied, and how far have the sweeps looked? -------------
#
# <prefix>:epoch is written once every queued row of PostgreSQL has been offered to the fair
# queue. Redis keeps it as long as it keeps the queue: if it is missing, Redis lost its data
# (a restart without persistence, a flush) or this deployment is new, and the next sweep offers
# every queued row again. <prefix>:sweep:mark is the submit time up to which the sweeps have
# looked; <prefix>:sweep:full exists while the last full pass is recent.


def sweep_lock(*, timeout: float):
    """Return the lock that lets one worker at a time sweep (redis-py's Lock, not yet held)."""
    return get_redis().lock(key("sweep", "lock"), timeout=timeout, blocking=False)


def sweep_epoch() -> str | None:
    """Return the epoch marker, or None if Redis lost it (and with it the queue)."""
    return get_redis().get(key("epoch"))


def sweep_finish_recovery(lock, *, now: float, mark: float) -> bool:
    """Write the epoch marker, the mark and the full-pass timer if `lock` is still held.

    A Redis restart during the recovery loses the lock, and then what the recovery queued:
    the marker is not written, so the next sweep starts over.
    """
    redis = get_redis()
    with redis.pipeline() as pipe:
        try:
            pipe.watch(lock.name)
            if not lock.owned():
                return False
            pipe.multi()
            pipe.set(key("epoch"), f"{now:.6f}")
            pipe.set(key("sweep", "mark"), repr(mark))
            pipe.set(key("sweep", "full"), "1", ex=max(1, int(settings.PQH_FULL_SWEEP_SECONDS)))
            pipe.execute()
            return True
        except redis_exceptions.WatchError:
            return False


def sweep_mark() -> float | None:
    """Return the submit time up to which the sweeps have looked, if known."""
    value = get_redis().get(key("sweep", "mark"))
    return None if value is None else float(value)


def sweep_set_mark(mark: float) -> None:
    get_redis().set(key("sweep", "mark"), repr(mark))


def sweep_full_due() -> bool:
    """Claim the slow full pass if PQH_FULL_SWEEP_SECONDS have passed since the last one."""
    claimed = get_redis().set(
        key("sweep", "full"), "1", nx=True, ex=max(1, int(settings.PQH_FULL_SWEEP_SECONDS))
    )
    return bool(claimed)
