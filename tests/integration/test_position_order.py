"""Queue positions against the real start order: a real worker with two slots, the API.

A task's `position` is the number of tasks that will start before it if no more tasks arrive
and none reaches the aging bound meanwhile (README, "Position"). These tests read every queued
task's position through `GET /api/tasks/<id>/`, as its owner would, while tasks are in flight:
two running, some released to the broker's level queues and not yet started, the rest waiting
in the fair queue, at several levels. Then they let the worker run everything and compare with
`started_at` in PostgreSQL.

Which tasks count: those that had not started when the positions were read (waiting in the fair
queue, or released and not yet taken by the worker); the two running tasks had started and have
no position. A task's actual place is how many of those started before it. Between the reads
and the last start nothing arrives (the test submits nothing more) and nothing ages (the aging
bound is 600 s in the worker and in the test process, and the test lasts well under a minute),
so each position must equal that place exactly, and no two tasks may share one.

The state must hold still while the positions are read, and the worker must take one task at a
time: tasks of RUN seconds, the first started alone and the others half a task later, so the
two slots free RUN / 2 apart (each start's pick has long released the next task by then), and
the reads fall between two starts (checked: no task starts while they run).
"""

import time

import pytest
from celery import states

from pqh_site.core import core
from tasks_app.models import TaskRecord
from tests.conftest import Worker, client_for, make_user, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RUN = 3.0  # seconds per task
SLOTS = 2
NO_AGING = 600.0


@pytest.fixture
def two_slots(request, worker_env, celery_worker, settings):
    """A worker with two slots, RUN-second tasks, no aging and the release buffer
    `request.param` (default 1), alone on the queues; the test process (the web side, which
    releases on submission) has the same settings."""
    buffer = getattr(request, "param", 1)
    settings.PQH_MAX_WAIT_SECONDS = NO_AGING
    settings.PQH_TASK_SECONDS = RUN
    settings.PQH_RELEASE_BUFFER = buffer
    celery_worker.stop()
    env = {
        **worker_env,
        "PQH_TASK_SECONDS": str(RUN),
        "PQH_MAX_WAIT_SECONDS": str(NO_AGING),
        "PQH_RELEASE_BUFFER": str(buffer),
    }
    worker = Worker(concurrency=SLOTS, env=env)
    worker.start()
    yield worker
    worker.stop()
    celery_worker.start()


def started_ids() -> set[str]:
    started = TaskRecord.objects.filter(started_at__isnull=False)
    return {str(pk) for pk in started.values_list("pk", flat=True)}


def released_levels() -> dict[str, int]:
    """The tasks released to the broker and not yet started: {task id: level queue}."""
    out = core().redis.hgetall(core().keys.key("q", "out"))
    return {task: int(value.split("|")[0]) for task, value in out.items() if task != "#"}


def run_scenario(users: dict[str, int], batch: list[str]) -> dict:
    """users: {name: weight}; batch: who submits each task, in order. The first task starts
    alone; half a task later the others are submitted. Then every
    task is read through the API by its owner, and everything is run. Returns what was read and
    what happened."""
    clients = {}
    for name, weight in users.items():
        _, token = make_user(name, weight=weight)
        clients[name] = client_for(token)
    owner: dict[str, str] = {}

    def submit(name: str) -> str:
        response = clients[name].post("/api/tasks/", {"x": len(owner)}, format="json")
        assert response.status_code == 202, response.content
        owner[response.json()["task_id"]] = name
        return response.json()["task_id"]

    first = submit(batch[0])
    wait_for(lambda: first in started_ids(), timeout=20, interval=0.02)
    time.sleep(RUN / 2 - 0.2)  # the other slot starts half a task later
    for name in batch[1:]:
        submit(name)
    wait_for(lambda: len(started_ids()) == SLOTS, timeout=5, interval=0.01)

    before = started_ids()
    bodies = {t: clients[owner[t]].get(f"/api/tasks/{t}/").json() for t in owner}
    released = released_levels()
    assert started_ids() == before, "a task started while the positions were read"

    queued = [t for t in owner if t not in before]
    assert all(bodies[t]["status"] == states.PENDING for t in queued)
    assert all(bodies[t]["position"] is None for t in before)  # running: no position
    wait_for(
        lambda: (
            not TaskRecord.objects.filter(pk__in=list(owner)).exclude(status="SUCCESS").exists()
        ),
        timeout=RUN * len(owner) / SLOTS + 30,
        interval=0.2,
    )
    rows = TaskRecord.objects.filter(pk__in=queued).values_list("pk", "started_at")
    started_at = {str(pk): at for pk, at in rows}
    order = sorted(queued, key=started_at.get)
    actual = {t: i for i, t in enumerate(order)}
    positions = {t: bodies[t]["position"] for t in queued}
    table = [
        (owner[t], bodies[t]["level"], released.get(t, "waiting"), positions[t], actual[t])
        for t in order
    ]
    return {
        "positions": positions,
        "actual": actual,
        "released": released,
        "levels": {t: bodies[t]["level"] for t in queued},
        "table": table,
    }


def test_the_newcomers_demo_positions_match_the_start_order(two_slots):
    """`make run`'s demo: demo1 (weight 1) submits seven tasks, demo2 (weight 3) three, on two
    slots. demo1's first task runs; half a task later demo1's other six and demo2's three
    arrive. demo1's second runs (level 1), its third is released into the level-1 queue and
    waits there, demo2's first (level 0) is released into the level-0 queue, and the rest wait
    in the fair queue. demo2's level-0 tasks all start before demo1's released level-1 task,
    since workers take level 0 first and each start releases the next level-0 task. (Before
    the fix, that task said 1, as demo2's second did, no task said 3, and it started fourth.)"""
    got = run_scenario({"demo1": 1, "demo2": 3}, ["demo1"] * 7 + ["demo2"] * 3)
    table = got["table"]
    assert len(got["positions"]) == 8, table
    assert 1 in got["released"].values(), table  # a level-1 task released while level 0 waits
    assert sorted(got["positions"].values()) == list(range(8)), table
    assert got["positions"] == got["actual"], table


@pytest.mark.parametrize("two_slots", [1, 2], indirect=True, ids=["buffer1", "buffer2"])
def test_positions_at_several_levels_match_the_start_order(two_slots):
    """Four users at levels 0, 1 and 2 (weights 1, 2, 3, 1), a release buffer of 1 or 2: at the
    reads two tasks run, one to four sit released in the level-0 and level-1 queues, the rest
    wait at levels 0, 1 and 2. Every queued task's position is the number of queued tasks that
    then started before it, and the positions are 0, 1, 2, ... with none shared."""
    users = {"hog": 1, "mid": 2, "light": 3, "late": 1}
    # hog: levels 0, 1 x 5, 2 x 3; mid: 0, 0, 1, 1; light: 0, 0; late: 0.
    batch = ["hog"] * 9 + ["mid"] * 4 + ["light"] * 2 + ["late"]
    got = run_scenario(users, batch)
    table = got["table"]
    levels = got["levels"]
    assert sorted(set(levels.values())) == [0, 1, 2], table
    waiting = [t for t in levels if t not in got["released"]]
    # Released to a worse queue than some task still waiting: what the old count missed.
    assert any(level > min(levels[t] for t in waiting) for level in got["released"].values()), table
    assert sorted(got["positions"].values()) == list(range(len(levels))), table
    assert got["positions"] == got["actual"], table
