"""The fair queue's reference model (tasks_app/queue_model.py): the Lua scripts and the model
make the same picks and give the same positions; the fairness bound holds on the model; a weight
change reaches the backlog."""

import itertools
import random
import time

import pytest
from django.test import override_settings

from fairqueue.model import FairQueueModel
from fairqueue.queue import QueuedTask
from pqh_site.core import core
from tests.unit.test_queue_model import _cost, bound_k, drain_with_refunds, model_state

from .test_fair_queue import own_prefix  # noqa: F401  (keys of their own, cleared around a test)

M = 30.0  # the aging bound of the differential test


LEVELS = 6


class Real:
    """The fair queue on the test Redis, driven through tasks_app.scheduler."""

    def add(self, tasks: list[dict], *, now: float, max_picks: int) -> list[str]:
        queued = [
            QueuedTask(
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
        return self._started(core().queue.add(queued, now=now, max_picks=max_picks).releases)

    def pick(self, *, now: float, max_picks: int) -> list[str]:
        return self._started(core().queue.pick(now=now, max_picks=max_picks))

    def _started(self, releases) -> list[str]:
        # Every pick is published and taken by a worker at once, so no release waits in the
        # broker or unconfirmed (the model leaves the release buffer out).
        assert all(not r.recovered for r in releases)
        ids = [r.task_id for r in releases]
        core().queue.confirm(ids)
        return ids

    def start(self, task_id: str, *, now: float) -> None:
        core().queue.pick(now=now, max_picks=0, started=task_id)

    def cancel(self, task: dict) -> bool:
        return core().queue.cancel(task_id=task["id"], seq=task["seq"], level=task["level"])

    def settle(self, task: dict, *, weight: int, seconds: float) -> None:
        core().queue.settle(
            task_id=task["id"],
            user_id=task["user"],
            level=task["level"],
            weight=weight,
            charged=task["cost"],
            seconds=seconds,
        )

    def reweight(self, user: int, weight: int) -> None:
        core().queue.reweight(user_id=user, weight=weight)

    def positions(self, tasks: list[dict], *, now: float) -> list[int | None]:
        places = core().queue.places([(t["id"], t["seq"], t["level"]) for t in tasks], now=now)
        return [None if p is None else p.position for p in places]

    def state(self) -> dict:
        """Every tag, virtual time and finish tag, as Redis holds them (parsed to floats)."""
        pipe = core().redis.pipeline(transaction=False)
        pipe.zrange(core().keys.key("q", "aged"), 0, -1, withscores=True)
        for level in range(LEVELS):
            pipe.zrange(core().keys.key("q", "lvl", level), 0, -1, withscores=True)
            pipe.zrange(core().keys.key("q", "fin", level), 0, -1, withscores=True)
        pipe.hgetall(core().keys.key("q", "vt"))
        aged, *levels, vt = pipe.execute()
        return {
            "aged": [(int(m), s) for m, s in aged],
            "lvl": [[(int(m), s) for m, s in tags] for tags in levels[0::2]],
            "vt": {int(level): float(v) for level, v in vt.items()},
            "fin": [{int(u): s for u, s in fin} for fin in levels[1::2]],
        }


def _clear() -> None:
    redis = core().redis
    names = list(redis.scan_iter(match=core().keys.key("*"), count=1000))
    if names:
        redis.delete(*names)


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


SEQUENCES = 150


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


WORKLOADS = 3000


class RealQueue:
    """The scripts, behind the model's enqueue / settle / pick (for drain_with_refunds)."""

    def __init__(self):
        self.real = Real()

    def enqueue(self, *, task_id, seq, user, level, weight, cost, submitted) -> None:
        task = {"id": task_id, "seq": seq, "user": user, "level": level, "weight": weight}
        self.real.add([{**task, "cost": cost, "submitted": submitted}], now=submitted, max_picks=0)

    def settle(self, user: int, level: int, weight: int, delta: float) -> None:
        # settle.lua moves the user's tags by (seconds - charged) / weight.
        task = {"id": "gone", "user": user, "level": level, "cost": 0.0}
        self.real.settle(task, weight=weight, seconds=delta)

    def pick(self, *, now: float, max_picks: int) -> list[str]:
        picked = self.real.pick(now=now, max_picks=max_picks)
        for task_id in picked:
            self.real.start(task_id, now=now)
        return picked


@override_settings(PQH_RELEASE_BUFFER=10**6)
def test_the_scripts_keep_a_backlogged_users_refunds():
    assert drain_with_refunds(RealQueue(), 1_500, in_flight=3) <= bound_k(3)


def test_a_weight_change_reaches_the_backlog_already_queued():
    """Two users of weight 1 backlogged at one level alternate; once one of them is given
    weight 3, the next picks, of tasks queued before the change, go 3:1 its way. The scripts
    and the model agree pick for pick."""
    real, model = Real(), FairQueueModel(levels=LEVELS, max_wait=M)
    tasks = [
        {"id": f"w{seq}", "seq": seq, "user": 1 + seq % 2, "level": 3, "weight": 1, "cost": 1.0,
         "submitted": 1000.0}
        for seq in range(1, 81)
    ]  # fmt: skip
    owner = {t["id"]: t["user"] for t in tasks}
    with override_settings(PQH_RELEASE_BUFFER=1_000_000, PQH_MAX_WAIT_SECONDS=M):
        assert real.add(tasks, now=1000.0, max_picks=0) == model.add(tasks, now=1000.0)
        before = real.pick(now=1000.0, max_picks=8)
        assert before == model.pick(now=1000.0, max_picks=8)
        assert [owner[t] for t in before] == [2, 1] * 4
        real.reweight(2, 3)
        model.reweight(2, 3)
        after = real.pick(now=1000.0, max_picks=40)
        assert after == model.pick(now=1000.0, max_picks=40)
    users = [owner[t] for t in after]
    assert users.count(2) == 30 and users.count(1) == 10
    # Interleaved, not runs of one user: after every k picks user 2 has had 3k/4 of them, +-1.
    assert all(abs(users[:k].count(2) - 0.75 * k) <= 1 for k in range(41)), users
