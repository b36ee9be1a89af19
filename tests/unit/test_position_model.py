"""Queue positions on the reference model: the closed form (position(), as the scripts compute
it) against the start order the model produces when it is run forward (start_order()).

start_order() is the definition made executable: from the state the positions were read in,
no task arrives and no time passes (so nothing more ages), every pick is published at once in
release order, and the workers take one task at a time, the first message of the best
non-empty level queue, with a pick before each start (each start triggers one). A position must
be the number of queued tasks (waiting or released, not started) that start before the task,
and so the positions of the queued tasks must be 0, 1, 2, ... with no two alike.
"""

import itertools
import random

import pytest

from fairqueue.model import FairQueueModel
from tests import sweep

LEVELS = 6
M = 30.0  # the aging bound
RECOVER = 10.0  # an unconfirmed pick is handed out again after this long


def queued(model: FairQueueModel) -> list[int]:
    """Every queue number the model holds: waiting, or released and not started."""
    return sorted([*model.tasks, *model.out_seq.values()])


def check(model: FairQueueModel, now: float, log: list[str]) -> None:
    seqs = queued(model)
    got = model.positions(seqs, now=now)
    order = model.start_order(now=now)  # queue numbers, and other messages by their name
    want = [order.index(seq) for seq in seqs]
    assert sorted(m for m in order if isinstance(m, int)) == seqs, log[-3:]
    assert got == want, "\n".join([*log[-8:], f"positions {got}", f"started   {want}"])


def run(seed: int) -> int:
    """One random history on the model, the positions checked after every step; return the
    number of checks."""
    rng = random.Random(seed)
    model = FairQueueModel(
        levels=LEVELS, max_wait=M, buffer=rng.choice([1, 1, 2, 3, 5]), recover_after=RECOVER
    )
    weights = {user: rng.choice([1, 1, 2, 3]) for user in range(1, rng.randint(2, 5))}
    seqs = itertools.count(1)
    now = 1000.0
    log: list[str] = []
    checks = 0

    def publish(share: float) -> None:
        # A prefix of the unconfirmed picks in release order (publishers keep that order).
        pending = sorted(model.rel.score, key=lambda t: model.out[t][2])
        model.publish(pending[: round(len(pending) * share)])

    for _ in range(rng.randint(10, 60)):
        op = rng.choices(
            ["add", "pick", "publish", "take", "cancel", "time", "restore"], [6, 2, 2, 4, 1, 1, 1]
        )[0]
        if op == "add":
            for _ in range(rng.choice([1, 1, 2, 5])):
                user = rng.choice(list(weights))
                seq = next(seqs)
                old = rng.random() < 0.1
                model.add(
                    [
                        {
                            "id": f"t{seq}",
                            "seq": seq,
                            "user": user,
                            "level": rng.choice([0, 1, 1, 2, 3, 5]),
                            "weight": weights[user],
                            "cost": 1.0,
                            "submitted": now - (rng.uniform(0, 2 * M) if old else 0.0),
                        }
                    ],
                    now=now,
                    max_picks=rng.choice([0, 1, 4]),
                )
            log.append(f"add -> now={now}")
        elif op == "pick":
            log.append(f"pick {model.pick(now=now, max_picks=rng.randint(1, 4))}")
        elif op == "publish":
            publish(rng.choice([0.5, 1.0]))
            log.append("publish")
        elif op == "take":
            publish(1.0)
            task_id = model.take()
            if task_id:
                log.append(f"take {task_id} -> {model.pick(now=now, max_picks=4, started=task_id)}")
        elif op == "cancel" and model.tasks:
            seq = rng.choice(list(model.tasks))
            model.cancel(seq)
            log.append(f"cancel {seq}")
        elif op == "time":
            now += rng.choice([0.5, RECOVER + 1, M / 2, M + 1])
            log.append(f"time -> {now}")
        elif op == "restore":
            level = rng.randrange(LEVELS)
            model.restore(level, f"lost-{next(seqs)}")
            log.append(f"restore into level {level}")
        check(model, now, log)
        checks += 1
    return checks


@pytest.mark.parametrize("block", range(10))
def test_positions_are_the_start_order_of_the_model_run_forward(block):
    """400 random histories under `make test`, 80 under `make test-unit` (tests/sweep.py) (buffers of 1 to 5; tasks waiting at several levels, aged, released
    and in the broker, picked and not yet published, released past the aging bound, picks
    handed out again, messages of lost workers put back in a level's queue): after every
    step, every queued task's position is its place in the start order."""
    for seed in sweep.seeds(400)[block::10]:
        run(seed)


def test_a_released_task_counts_the_better_tasks_still_waiting():
    """The newcomer's demo on two slots: demo1's third task (level 1) sits released in the
    level-1 queue while demo2's level-0 tasks wait; each of those is released into level 0
    when a slot takes the one before, and starts before it."""
    model = FairQueueModel(levels=LEVELS, buffer=1)
    tasks = [("a1", 1, 0), ("a2", 1, 1), ("a3", 1, 1), ("a4", 1, 1), ("b1", 2, 0), ("b2", 2, 0)]
    for seq, (task_id, user, level) in enumerate(tasks, start=1):
        weight = 3 if user == 2 else 1
        task = {"id": task_id, "seq": seq, "user": user, "level": level, "weight": weight}
        for released in model.add([{**task, "submitted": 1000.0}], now=1000.0, max_picks=4):
            model.publish([released])
            if released in ("a1", "a2"):  # the two slots take them at once
                assert model.take() == released
                model.pick(now=1000.0, max_picks=4, started=released)
    assert model.broker[1] == ["a3"] and model.broker[0] == ["b1"]
    # b1 (level-0 queue), b2 (waiting at level 0), a3 (level-1 queue), a4 (waiting at level 1).
    assert model.positions([5, 6, 3, 4], now=1000.0) == [0, 1, 2, 3]
    assert model.start_order(now=1000.0) == [5, 6, 3, 4]
