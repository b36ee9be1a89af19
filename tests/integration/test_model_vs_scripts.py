"""The fair queue's reference model (fairqueue/model.py): the Lua scripts and the model make
the same picks and give the same positions, with and without teams; the fairness bound holds on
the model; a weight change reaches the backlog."""

import itertools
import random
import time

import pytest
from django.test import override_settings

from fairqueue.model import FairQueueModel
from fairqueue.queue import QueuedTask
from pqh_site.core import core
from tests.queue_sequences import LEVELS, RECOVER, M, parse_hold, run_sequence
from tests.unit.test_queue_model import bound_k, closed_loop_share, drain_with_refunds

from .test_fair_queue import own_prefix  # noqa: F401  (keys of their own, cleared around a test)


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
                team=t.get("team"),
                team_weight=t.get("tweight", 1),
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

    def settle(self, task: dict, *, weight: int, seconds: float) -> float:
        return core().queue.settle(
            task_id=task["id"],
            user_id=task["user"],
            level=task["level"],
            weight=weight,
            charged=task["cost"],
            seconds=seconds,
        )

    def reweight(self, user: int, weight: int) -> None:
        core().queue.reweight(user_id=user, weight=weight)

    def reweight_team(self, team: str, weight: int) -> int:
        return core().queue.reweight_team(team=team, weight=weight)

    def set_team(self, user: int, team: str, weight: int, team_weight: int) -> int:
        return core().queue.set_team(
            user_id=user, team=team, weight=weight, team_weight=team_weight
        )

    def positions(self, tasks: list[dict], *, now: float) -> list[int | None]:
        places = core().queue.places([(t["id"], t["seq"], t["level"]) for t in tasks], now=now)
        return [None if p is None else p.position for p in places]

    def state(self) -> dict:
        """Every tag, virtual time, finish tag and released task, as Redis holds them."""
        key = core().keys.key
        pipe = core().redis.pipeline(transaction=False)
        for name in ("task", "grp", "teams", "hold"):
            pipe.hgetall(key("q", name))
        for level in range(LEVELS):
            pipe.zrange(key("q", "in", level), 0, -1, withscores=True)
            pipe.hgetall(key("q", "mf", level))
            pipe.hgetall(key("q", "tv", level))
        pipe.zrange(key("q", "aged"), 0, -1, withscores=True)
        for level in range(LEVELS):
            pipe.zrange(key("q", "lvl", level), 0, -1, withscores=True)
            pipe.zrange(key("q", "fin", level), 0, -1, withscores=True)
        pipe.hgetall(key("q", "vt"))
        pipe.hgetall(key("q", "out"))
        pipe.zrange(key("q", "brk"), 0, -1, withscores=True)
        pipe.zrange(key("q", "rel"), 0, -1, withscores=True)
        tasks, grp, teams, hold, *rest = pipe.execute()
        teamed, (aged, *rest) = rest[: 3 * LEVELS], rest[3 * LEVELS :]
        levels, (vt, out, brk, rel) = rest[: 2 * LEVELS], rest[2 * LEVELS :]
        # The broker's lists, on the broker's own Redis (the same one unless on a cluster).
        brokers = [core().broker.redis.lrange(q, 0, -1) for q in core().config.broker_queues]
        return {
            "task": {int(m): info for m, info in tasks.items()},
            "aged": [(int(m), s) for m, s in aged],
            "lvl": [[(int(m), s) for m, s in tags] for tags in levels[0::2]],
            "vt": {int(level): float(v) for level, v in vt.items()},
            "fin": [{int(u) if u.isdigit() else u: s for u, s in fin} for fin in levels[1::2]],
            "out": out,
            "brk": brk,
            "rel": rel,
            "broker": [list(reversed(queue)) for queue in brokers],  # oldest message first
            "in": [sorted((s, int(m)) for m, s in inner) for inner in teamed[0::3]],
            "mf": [{int(u): float(f) for u, f in mf.items()} for mf in teamed[1::3]],
            "tv": [{t: float(v) for t, v in tv.items()} for tv in teamed[2::3]],
            "grp": {int(u): t for u, t in grp.items()},
            "teams": {t: float(w) for t, w in teams.items()},
            "hold": parse_hold(hold),
        }


def _clear() -> None:
    redis = core().redis
    names = list(redis.scan_iter(match=core().keys.key("*"), count=1000))
    if names:
        redis.delete(*names)
    core().broker.redis.delete(*core().config.broker_queues)


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
    for seed in range(2 * SEQUENCES):
        _clear()
        teams = seed >= SEQUENCES  # the second half: users in teams, team weights, moves
        rng = random.Random(seed)
        n_ops, buffer = rng.randint(20, 60), BUFFERS[seed % len(BUFFERS)]
        hold = seed % 3 == 0  # PQH_CHARGE=time: picked tasks held until they settle
        settings = {
            "PQH_RELEASE_BUFFER": buffer,
            "PQH_MAX_WAIT_SECONDS": M,
            "PQH_RELEASE_RECOVER_SECONDS": RECOVER,
            "PQH_CHARGE": "time" if hold else "tasks",
        }
        with override_settings(**settings):
            try:
                run_sequence(seed, n_ops, buffer=buffer, real=Real(), teams=teams, hold=hold)
            except AssertionError as failure:
                pytest.fail(f"seed {seed} ({n_ops} ops, buffer {buffer}, teams {teams}): {failure}")
        ops += n_ops
    print(f"{2 * SEQUENCES} sequences, {ops} operations, {time.monotonic() - started:.1f} s")


WORKLOADS = 3000


class RealQueue:
    """The scripts, behind the model's enqueue / settle / pick (for drain_with_refunds)."""

    def __init__(self):
        self.real = Real()

    def enqueue(self, *, task_id, seq, user, level, weight, cost, submitted) -> None:
        task = {"id": task_id, "seq": seq, "user": user, "level": level, "weight": weight}
        self.real.add([{**task, "cost": cost, "submitted": submitted}], now=submitted, max_picks=0)

    def settle(
        self, user: int, level: int, weight: int, delta: float, task_id="gone", seconds=None
    ) -> None:
        # settle.lua moves the user's tags by (seconds - charged) / weight.
        seconds = delta if seconds is None else seconds
        task = {"id": task_id, "user": user, "level": level, "cost": seconds - delta}
        self.real.settle(task, weight=weight, seconds=seconds)

    def pick(self, *, now: float, max_picks: int) -> list[str]:
        picked = self.real.pick(now=now, max_picks=max_picks)
        for task_id in picked:
            self.real.start(task_id, now=now)
        return picked


@override_settings(PQH_RELEASE_BUFFER=10**6)
def test_the_scripts_keep_a_backlogged_users_refunds():
    assert drain_with_refunds(RealQueue(), 1_500, in_flight=3) <= bound_k(3)


def test_the_scripts_hold_a_closed_loop_users_corrections_until_its_tasks_settle():
    """A user with one task at a time, charged 0.1 s for tasks of 3 s, against a backlogged
    user of exact 1 s tasks, two tasks in flight: without the hold (the scripts as they were,
    PQH_CHARGE=tasks passes no hold) each correction came after the level's clock had passed
    the user's finish tag and was lost: 0.600 of the time; held (PQH_CHARGE=time), 0.500."""
    with override_settings(PQH_RELEASE_BUFFER=10**6, PQH_CHARGE="tasks"):
        before = closed_loop_share(RealQueue(), 600)
    _clear()
    with override_settings(PQH_RELEASE_BUFFER=10**6, PQH_CHARGE="time"):
        after = closed_loop_share(RealQueue(), 600)
    print(f"on the scripts: {before:.3f} without the hold, {after:.3f} with")
    assert before > 0.58
    assert abs(after - 0.5) < 0.02


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


def _longest_run_of_a_late_estimate(charge: str) -> tuple[int, list[int]]:
    """User 1's tasks take 1 s but were all queued charged 0.2 s (no history yet); user 2's
    take 1 s, charged 1 s; both weight 1, backlogged at one level, three tasks in flight (each
    settled three picks after its own). Return the longest run of consecutive picks of user 1
    after the first settle, and the picks."""
    _clear()
    real = Real()
    tasks = [
        {"id": f"e{seq}", "seq": seq, "user": 1 + seq % 2, "level": 0, "weight": 1,
         "cost": 0.2 if seq % 2 == 0 else 1.0, "submitted": 1000.0}
        for seq in range(1, 61)
    ]  # fmt: skip
    by_id = {t["id"]: t for t in tasks}
    users, running = [], []
    with override_settings(PQH_RELEASE_BUFFER=10**6, PQH_CHARGE=charge):
        real.add(tasks, now=1000.0, max_picks=0)
        for _ in range(30):
            (task_id,) = real.pick(now=1000.0, max_picks=1)
            real.start(task_id, now=1000.0)
            users.append(by_id[task_id]["user"])
            running.append(by_id[task_id])
            if len(running) > 3:
                real.settle(running.pop(0), weight=1, seconds=1.0)
    # From the first settle on (before it, nothing can know the estimate is low).
    runs = [len(list(group)) for user, group in itertools.groupby(users[4:]) if user == 1]
    return max(runs), users


def test_waiting_tasks_are_charged_their_users_new_mean():
    """Before (the scripts without it: PQH_CHARGE=tasks passes no `follow`), a user whose
    queued tasks were charged too little is picked in runs until each settle catches up; with
    PQH_CHARGE=time its waiting tasks are charged its new mean at its first settle, and the two
    users alternate."""
    before, picks_before = _longest_run_of_a_late_estimate("tasks")
    after, picks_after = _longest_run_of_a_late_estimate("time")
    print(f"longest run of the late estimate's user: {before} before, {after} after")
    assert before >= 3, picks_before
    assert after <= 2, picks_after
