"""The fair queue's reference model (tasks_app/queue_model.py): the Lua scripts and the model
make the same picks and give the same positions; the fairness bound holds on the model; a weight
change reaches the backlog."""

import itertools
import random
import time

import pytest
from django.test import override_settings

from tasks_app import scheduler
from tasks_app.queue_model import FairQueueModel
from tasks_app.redis_client import get_redis, key

from .test_fair_queue import own_prefix  # noqa: F401  (keys of their own, cleared around a test)

M = 30.0  # the aging bound of the differential test
LEVELS = 6

# --- a. differential: the Lua scripts on the real Redis against the model ---------------------


class Real:
    """The fair queue on the test Redis, driven through tasks_app.scheduler."""

    def add(self, tasks: list[dict], *, now: float, max_picks: int) -> list[str]:
        queued = [
            scheduler.QueuedTask(
                task_id=t["id"],
                seq=t["seq"],
                user_id=t["user"],
                level=t["level"],
                weight=t["weight"],
                cost=t["cost"],
                submitted=t["submitted"],
            )
            for t in tasks
        ]
        return self._started(scheduler.queue_add(queued, now=now, max_picks=max_picks).releases)

    def pick(self, *, now: float, max_picks: int) -> list[str]:
        return self._started(scheduler.queue_pick(now=now, max_picks=max_picks))

    def _started(self, releases) -> list[str]:
        # Every pick is published and taken by a worker at once, so no release waits in the
        # broker or unconfirmed (the model leaves the release buffer out).
        assert all(not r.recovered for r in releases)
        ids = [r.task_id for r in releases]
        scheduler.queue_confirm(ids)
        return ids

    def start(self, task_id: str, *, now: float) -> None:
        scheduler.queue_pick(now=now, max_picks=0, started=task_id)

    def cancel(self, task: dict) -> bool:
        return scheduler.queue_cancel(task_id=task["id"], seq=task["seq"], level=task["level"])

    def settle(self, task: dict, *, weight: int, seconds: float) -> None:
        scheduler.queue_settle(
            task_id=task["id"],
            user_id=task["user"],
            level=task["level"],
            weight=weight,
            charged=task["cost"],
            seconds=seconds,
        )

    def reweight(self, user: int, weight: int) -> None:
        scheduler.queue_reweight(user_id=user, weight=weight)

    def positions(self, tasks: list[dict], *, now: float) -> list[int | None]:
        return scheduler.queue_positions([(t["id"], t["seq"], t["level"]) for t in tasks], now=now)

    def state(self) -> dict:
        """Every tag, virtual time and finish tag, as Redis holds them (parsed to floats)."""
        pipe = get_redis().pipeline(transaction=False)
        pipe.zrange(key("q", "aged"), 0, -1, withscores=True)
        for level in range(LEVELS):
            pipe.zrange(key("q", "lvl", level), 0, -1, withscores=True)
            pipe.zrange(key("q", "fin", level), 0, -1, withscores=True)
        pipe.hgetall(key("q", "vt"))
        aged, *levels, vt = pipe.execute()
        return {
            "aged": [(int(m), s) for m, s in aged],
            "lvl": [[(int(m), s) for m, s in tags] for tags in levels[0::2]],
            "vt": {int(level): float(v) for level, v in vt.items()},
            "fin": [{int(u): s for u, s in fin} for fin in levels[1::2]],
        }


def model_state(model: FairQueueModel) -> dict:
    return {
        "aged": [(m, s) for s, m in model.aged.order],
        "lvl": [[(m, s) for s, m in model.lvl[level].order] for level in range(LEVELS)],
        "vt": {level: v for level, v in enumerate(model.vt) if v != 0.0},
        "fin": [dict(model.fin[level]) for level in range(LEVELS)],
    }


def _clear() -> None:
    redis = get_redis()
    names = list(redis.scan_iter(match=key("*"), count=1000))
    if names:
        redis.delete(*names)


def _cost(rng: random.Random) -> float:
    """Tasks mode (1), or estimated seconds with awkward binary fractions."""
    return rng.choice(
        [1.0, 1.0, rng.uniform(0.001, 5.0), 0.1, 1 / 3, rng.expovariate(2.0) + 1e-6, 7.25]
    )


def run_sequence(seed: int, n_ops: int) -> list[str]:
    """Apply one random operation sequence to the scripts and to the model; return the log.

    Asserts, after every operation, the same picks and the same positions of every task the
    sequence queued (waiting, picked or cancelled).
    """
    rng = random.Random(seed)
    real, model = Real(), FairQueueModel(levels=LEVELS, max_wait=M)
    weights = {user: rng.choice([1, 1, 2, 3, 5]) for user in range(1, rng.randint(2, 6))}
    seqs = itertools.count(1)
    now = 1000.0
    queued: list[dict] = []
    picked: list[dict] = []  # picked and not yet settled (in flight)
    log: list[str] = []

    def started(ids: list[str], at: float) -> None:
        for task_id in ids:
            real.start(task_id, now=at)
            assert model.pick(now=at, max_picks=0) == []
            picked.append(next(t for t in queued if t["id"] == task_id))

    for _ in range(n_ops):
        op = rng.choices(
            ["add", "pick", "cancel", "settle", "reweight", "time"], [5, 3, 1, 2, 1, 1]
        )[0]
        if op == "add":
            batch = []
            for _ in range(rng.choice([1, 1, 1, 2, 3, 20])):
                user = rng.choice(list(weights))
                seq = next(seqs)
                # Mostly fresh; sometimes queued again long after its submission (goes aged).
                submitted = now - (rng.uniform(0, 2 * M) if rng.random() < 0.1 else 0.0)
                batch.append(
                    {
                        "id": f"t{seed}-{seq}",
                        "seq": seq,
                        "user": user,
                        "level": rng.choice([0, 1, 1, 2, 3, 5, 5, 5]),
                        "weight": weights[user],
                        "cost": _cost(rng),
                        "submitted": submitted,
                    }
                )
            queued += batch
            max_picks = rng.choice([0, 0, 0, 1, 2])
            got, want = (
                real.add(batch, now=now, max_picks=max_picks),
                model.add(batch, now=now, max_picks=max_picks),
            )
            log.append(f"add {batch} now={now} max_picks={max_picks} -> {got}")
            assert got == want, log[-1] + f" model: {want}"
            started(got, now)
        elif op == "pick":
            max_picks = rng.randint(1, 4)
            got, want = (
                real.pick(now=now, max_picks=max_picks),
                model.pick(now=now, max_picks=max_picks),
            )
            log.append(f"pick now={now} max_picks={max_picks} -> {got}")
            assert got == want, log[-1] + f" model: {want}"
            started(got, now)
        elif op == "cancel" and queued:
            task = rng.choice(queued)
            got = real.cancel(task)
            want = model.cancel(task["seq"], task["id"])
            log.append(f"cancel {task['id']} -> {got}")
            assert got == want, log[-1] + f" model: {want}"
        elif op == "settle" and picked:
            task = picked.pop(rng.randrange(len(picked)))
            seconds = rng.choice([task["cost"], rng.uniform(0.0, 6.0), rng.expovariate(1.0)])
            weight = weights[task["user"]]
            real.settle(task, weight=weight, seconds=seconds)
            model.settle(task["user"], task["level"], weight, seconds - task["cost"])
            log.append(f"settle {task['id']} weight={weight} seconds={seconds!r}")
        elif op == "reweight":
            user = rng.choice(list(weights))
            weights[user] = rng.choice([1, 2, 3, 4, 7])
            real.reweight(user, weights[user])
            model.reweight(user, weights[user])
            log.append(f"reweight {user} -> {weights[user]}")
        elif op == "time":
            now += rng.choice([0.5, 3.0, M / 2, M + 1, 3 * M])
            log.append(f"time -> {now}")
        # Every tag exactly as the model computed it (same floating point operations).
        assert real.state() == model_state(model), log[-1]
        if queued and rng.random() < 0.5:
            # A page of tasks (positions.lua ages at most 16 + 2 x tasks first).
            page = rng.sample(queued, min(len(queued), rng.choice([1, 3, len(queued)])))
            got = real.positions(page, now=now)
            want = model.positions([t["seq"] for t in page], now=now)
            assert got == want, log[-1] + f"\npositions: {got}\nmodel:     {want}"
    return log


SEQUENCES = 200


def test_the_scripts_and_the_model_pick_alike():
    """Random sequences of enqueue (users, weights, levels, costs), pick, cancel, settle,
    reweight and time jumps past the aging bound: the scripts and the model release the same
    tasks in the same order, and give every queued task the same position after each step."""
    started = time.monotonic()
    ops = 0
    with override_settings(PQH_RELEASE_BUFFER=1_000_000, PQH_MAX_WAIT_SECONDS=M):
        for seed in range(SEQUENCES):
            _clear()
            n_ops = random.Random(seed).randint(20, 60)
            try:
                run_sequence(seed, n_ops)
            except AssertionError as failure:
                pytest.fail(f"seed {seed} ({n_ops} ops): {failure}")
            ops += n_ops
    print(f"{SEQUENCES} sequences, {ops} operations, {time.monotonic() - started:.1f} s")
