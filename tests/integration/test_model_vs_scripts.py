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
RECOVER = 10.0  # an unconfirmed pick is handed out again after this long


LEVELS = 6


class Real:
    """The fair queue on the test Redis, driven through fairqueue.queue; the broker's level
    lists hold task ids as messages (LPUSH to publish, RPOP from the best non-empty list to
    take, as kombu does)."""

    def __init__(self):
        self.target: dict[str, int] = {}  # task id -> the level queue it was released to

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
        return self._released(core().queue.add(queued, now=now, max_picks=max_picks).releases)

    def pick(self, *, now: float, max_picks: int, started: str = "") -> list[str]:
        return self._released(core().queue.pick(now=now, max_picks=max_picks, started=started))

    def _released(self, releases) -> list[str]:
        for r in releases:
            self.target[r.task_id] = r.target_level
        return [r.task_id for r in releases]

    def publish(self, task_ids: list[str]) -> None:
        """Publish to the level lists and confirm, as tasks_app.services.publishing does."""
        for task_id in task_ids:
            core().broker.redis.lpush(core().config.broker_queues[self.target[task_id]], task_id)
        core().queue.confirm(task_ids)

    def restore(self, level: int, message: str) -> None:
        """A message put back at the end workers take from (as kombu restores one)."""
        core().broker.redis.rpush(core().config.broker_queues[level], message)

    def take(self) -> str | None:
        for queue in core().config.broker_queues:
            task_id = core().broker.redis.rpop(queue)
            if task_id:
                return task_id
        return None

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
        """Every tag, virtual time, finish tag and released task, as Redis holds them."""
        key = core().keys.key
        pipe = core().redis.pipeline(transaction=False)
        pipe.zrange(key("q", "aged"), 0, -1, withscores=True)
        for level in range(LEVELS):
            pipe.zrange(key("q", "lvl", level), 0, -1, withscores=True)
            pipe.zrange(key("q", "fin", level), 0, -1, withscores=True)
        pipe.hgetall(key("q", "vt"))
        pipe.hgetall(key("q", "out"))
        pipe.zrange(key("q", "brk"), 0, -1, withscores=True)
        pipe.zrange(key("q", "rel"), 0, -1, withscores=True)
        aged, *rest = pipe.execute()
        levels, (vt, out, brk, rel) = rest[: 2 * LEVELS], rest[2 * LEVELS :]
        # The broker's lists, on the broker's own Redis (the same one unless on a cluster).
        brokers = [core().broker.redis.lrange(q, 0, -1) for q in core().config.broker_queues]
        return {
            "aged": [(int(m), s) for m, s in aged],
            "lvl": [[(int(m), s) for m, s in tags] for tags in levels[0::2]],
            "vt": {int(level): float(v) for level, v in vt.items()},
            "fin": [{int(u): s for u, s in fin} for fin in levels[1::2]],
            "out": out,
            "brk": brk,
            "rel": rel,
            "broker": [list(reversed(queue)) for queue in brokers],  # oldest message first
        }


def _clear() -> None:
    redis = core().redis
    names = list(redis.scan_iter(match=core().keys.key("*"), count=1000))
    if names:
        redis.delete(*names)
    core().broker.redis.delete(*core().config.broker_queues)


def run_sequence(seed: int, n_ops: int, *, buffer: float) -> list[str]:
    """Apply one random operation sequence to the scripts and to the model; return the log.

    Asserts, after every operation, the same picks, the same state (tags, virtual times,
    finish tags, aged set, released tasks with their release numbers, broker lists), and now
    and then the same positions of a page of the tasks the sequence queued (waiting, released,
    started or cancelled).
    """
    rng = random.Random(seed)
    real = Real()
    model = FairQueueModel(levels=LEVELS, max_wait=M, buffer=buffer, recover_after=RECOVER)
    weights = {user: rng.choice([1, 1, 2, 3, 5]) for user in range(1, rng.randint(2, 6))}
    seqs = itertools.count(1)
    now = 1000.0
    queued: list[dict] = []
    started: list[dict] = []  # taken by a worker and not yet settled (running)
    log: list[str] = []

    def same(got: list[str], want: list[str]) -> list[str]:
        assert got == want, log[-1] + f" model: {want}"
        return got

    for _ in range(n_ops):
        op = rng.choices(
            ["add", "pick", "publish", "take", "cancel", "settle", "reweight", "time", "restore"],
            [5, 2, 2, 3, 1, 2, 1, 1, 0.3],
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
            log.append(f"add {batch} now={now} max_picks={max_picks}")
            got = real.add(batch, now=now, max_picks=max_picks)
            log[-1] += f" -> {same(got, model.add(batch, now=now, max_picks=max_picks))}"
        elif op == "pick":
            max_picks = rng.randint(1, 4)
            log.append(f"pick now={now} max_picks={max_picks}")
            got = real.pick(now=now, max_picks=max_picks)
            log[-1] += f" -> {same(got, model.pick(now=now, max_picks=max_picks))}"
        elif op == "publish":
            # Some of the unconfirmed picks, in any order (a slow publisher, two publishers).
            pending = [t for _, t in model.rel.order]
            chosen = rng.sample(pending, rng.randint(0, len(pending)))
            real.publish(chosen)
            model.publish(chosen)
            log.append(f"publish {chosen}")
        elif op == "take":
            task_id = real.take()
            assert task_id == model.take()
            log.append(f"take {task_id} now={now}")
            if task_id:
                # Its start is reported with a pick, which may release more.
                got = real.pick(now=now, max_picks=4, started=task_id)
                log[-1] += f" -> {same(got, model.pick(now=now, max_picks=4, started=task_id))}"
                started += [t for t in queued if t["id"] == task_id]
        elif op == "cancel" and queued:
            task = rng.choice(queued)
            got = real.cancel(task)
            want = model.cancel(task["seq"], task["id"])
            log.append(f"cancel {task['id']} -> {got}")
            assert got == want, log[-1] + f" model: {want}"
        elif op == "settle" and started:
            task = started.pop(rng.randrange(len(started)))
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
            now += rng.choice([0.5, 3.0, RECOVER + 1, M / 2, M + 1, 3 * M])
            log.append(f"time -> {now}")
        elif op == "restore":
            level = rng.randrange(LEVELS)
            message = f"lost-{seed}-{next(seqs)}"
            real.restore(level, message)
            model.restore(level, message)
            log.append(f"restore {message} into level {level}")
        # Every tag exactly as the model computed it (same floating point operations).
        assert real.state() == model_state(model), log[-1]
        if queued and rng.random() < 0.5:
            # A page of tasks (positions.lua ages at most 16 + 2 x tasks first).
            page = rng.sample(queued, min(len(queued), rng.choice([1, 3, len(queued)])))
            got = real.positions(page, now=now)
            want = model.positions([t["seq"] for t in page], now=now)
            assert got == want, log[-1] + f"\npositions: {got}\nmodel:     {want}"
            assert real.state() == model_state(model), "positions " + log[-1]
    return log


SEQUENCES = 150


BUFFERS = [1, 1, 2, 3, 1_000_000]


def test_the_scripts_and_the_model_pick_alike():
    """Random sequences of enqueue (users, weights, levels, costs), pick, publish (some of the
    unconfirmed picks, in any order), a worker taking a task (and the pick its start triggers),
    a message the queue did not release put back in a level's queue, cancel, settle, reweight
    and time jumps past the aging bound and the recovery time, with
    release buffers of 1, 2, 3 and no limit: the scripts and the model release the same tasks
    in the same order, hold the same state, and give every queued task the same position."""
    started = time.monotonic()
    ops = 0
    for seed in range(SEQUENCES):
        _clear()
        rng = random.Random(seed)
        n_ops, buffer = rng.randint(20, 60), BUFFERS[seed % len(BUFFERS)]
        settings = {
            "PQH_RELEASE_BUFFER": buffer,
            "PQH_MAX_WAIT_SECONDS": M,
            "PQH_RELEASE_RECOVER_SECONDS": RECOVER,
        }
        with override_settings(**settings):
            try:
                run_sequence(seed, n_ops, buffer=buffer)
            except AssertionError as failure:
                pytest.fail(f"seed {seed} ({n_ops} ops, buffer {buffer}): {failure}")
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
