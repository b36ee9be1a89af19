"""Admission: the window, the per-user cap, the global bound and idempotency, in one Redis step."""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from . import scheduler
from .redis_client import get_redis, get_script, key
from .window import window_key

ADMITTED, REPLAY, IN_PROGRESS, USER_CAP, QUEUE_FULL = (
    "admitted",
    "replay",
    "in_progress",
    "user_cap",
    "queue_full",
)


@dataclass(frozen=True)
class Admission:
    """admit.lua's answer: `outcome` and its number (count before, active, queued) or task id.

    An admission also says the window's usage before it and the task's cost: the count and 1
    with PQH_CHARGE=tasks, seconds with PQH_CHARGE=time.
    """

    outcome: str
    count: int = 0
    task_id: str = ""
    usage: float = 0.0
    cost: float = 1.0


def active_key(user_id: int) -> str:
    return key("act", user_id)


def admitting_key() -> str:
    return key("q", "admitting")


def idempotency_redis_key(user_id: int, idempotency_key: str) -> str:
    return key("idem", user_id, idempotency_key)


def admission_admit(
    *,
    user_id: int,
    task_id: str,
    now: float,
    user_cap: int,
    idempotency_key: str = "",
) -> Admission:
    """Decide a submission in one round trip: admit it (counted in the window), or say why not."""
    keys = [
        *scheduler.queue_keys(),
        window_key(user_id),
        active_key(user_id),
        key("wc", user_id),
        key("est", user_id),
    ]
    if idempotency_key:
        keys.append(idempotency_redis_key(user_id, idempotency_key))
    args = {
        "task_id": task_id,
        "now": now,
        "levels": settings.PQH_LEVELS,
        "charge": settings.PQH_CHARGE,
        "default_cost": settings.PQH_TASK_SECONDS,
        "window_seconds": settings.PQH_WINDOW_SECONDS,
        "user_cap": user_cap,
        "max_queued": settings.PQH_MAX_QUEUED,
        "idempotency_seconds": settings.PQH_IDEMPOTENCY_SECONDS,
        "abandon_after": settings.PQH_RECOVER_LOST_SECONDS,
    }
    outcome, value, *charge = get_script("admit")(keys=keys, args=[json.dumps(args)])
    if outcome in (REPLAY, IN_PROGRESS):
        return Admission(outcome=outcome, task_id=value)
    if outcome == ADMITTED:
        usage, cost = charge
        return Admission(outcome=outcome, count=int(value), usage=float(usage), cost=float(cost))
    return Admission(outcome=outcome, count=int(value))


def admission_undo(
    *, user_id: int, task_id: str, idempotency_key: str = "", replay_id: str = ""
) -> None:
    """Take back an admission: the submission was not recorded or not queued after all.

    With `replay_id`, the Idempotency-Key turned out to name that earlier task: it does so again.
    """
    keys = [window_key(user_id), active_key(user_id), admitting_key(), key("wc", user_id)]
    if idempotency_key:
        keys.append(idempotency_redis_key(user_id, idempotency_key))
    args = {"task_id": task_id, "idempotency_seconds": settings.PQH_IDEMPOTENCY_SECONDS}
    if replay_id:
        args["replay_id"] = replay_id
    get_script("unadmit")(keys=keys, args=[json.dumps(args)])


def admission_complete(*, task_id: str, idempotency_key: str = "", user_id: int = 0) -> None:
    """End an admission without the fair queue (PQH_FAIRNESS off: published straight away)."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.zrem(admitting_key(), task_id)
    if idempotency_key:
        pipe.set(
            idempotency_redis_key(user_id, idempotency_key),
            f"d|{task_id}",
            ex=int(settings.PQH_IDEMPOTENCY_SECONDS),
        )
    pipe.execute()


def admission_release(*, user_id: int, task_ids: Iterable[str]) -> None:
    """Take ended tasks out of their user's active set, so they stop counting against the cap."""
    task_ids = list(task_ids)
    if task_ids:
        get_redis().zrem(active_key(user_id), *task_ids)


def admission_active_count(*, user_id: int) -> int:
    """Return how many tasks count against the user's cap now."""
    return int(get_redis().zcard(active_key(user_id)))


def admission_restore(entries: Iterable[tuple[int, str, float]]) -> None:
    """Put (user id, task id, since) back in the active sets, after Redis lost them."""
    pipe = get_redis().pipeline(transaction=False)
    for user_id, task_id, since in entries:
        pipe.zadd(active_key(user_id), {task_id: int(since)})
    pipe.execute()


def admission_active_before(*, cutoff: float) -> dict[int, list[str]]:
    """Return {user id: task ids} of active-set entries admitted before `cutoff`.

    A sweep over every active set (SCAN, then 500 sets a round trip): for the slow safety pass
    only, never for a request.
    """
    redis = get_redis()
    prefix = active_key("")
    users = [
        int(name[len(prefix) :])
        for name in redis.scan_iter(match=f"{prefix}*", count=1000)
        if name[len(prefix) :].isdigit()
    ]
    found: dict[int, list[str]] = {}
    for i in range(0, len(users), 500):
        chunk = users[i : i + 500]
        pipe = redis.pipeline(transaction=False)
        for user_id in chunk:
            pipe.zrangebyscore(active_key(user_id), "-inf", cutoff)
        for user_id, ids in zip(chunk, pipe.execute(), strict=True):
            if ids:
                found[user_id] = ids
    return found
