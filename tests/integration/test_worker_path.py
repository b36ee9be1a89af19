"""What one task costs a worker, counted inside a real worker's processes.

The worker runs with tests/worker_counts.py loaded: each task its pool runs is one line of the
SQL statements, Redis round trips and PostgreSQL connections from Celery's task_prerun to its
task_postrun (the claim, the next release, the notices, the work, the finish with the stored
result, the cap's place, the settle). docs/performance.md ("The worker path") explains each.
"""

import json

import pytest

from tasks_app.models import TaskRecord
from tasks_app.services.submission import task_submit
from tests.conftest import Worker, make_user, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TASKS = 6


def run_counted(worker_env, tmp_path, **env) -> tuple[list[dict], dict]:
    """Run TASKS zero-length tasks of one user on a counting worker; its lines, its main's."""
    counts = tmp_path / "counts.jsonl"
    worker = Worker(
        concurrency=1,
        env={
            **worker_env,
            "PQH_TASK_SECONDS": "0",
            "PQH_TEST_COUNTS_FILE": str(counts),
            **env,
        },
        args=("--include", "tests.worker_counts"),
    )
    user, _ = make_user("counted")
    records = [task_submit(user=user, x=i) for i in range(TASKS)]
    worker.start()
    try:
        wait_for(
            lambda: (
                TaskRecord.objects.filter(pk__in=[r.pk for r in records], status="SUCCESS").count()
                == TASKS
            ),
            timeout=60,
        )
    finally:
        worker.stop()
    lines = [json.loads(line) for line in counts.read_text().splitlines()]
    tasks = [line for line in lines if "task" in line]
    main = next((line["main"] for line in lines if "main" in line), {})
    assert sorted(t["task"] for t in tasks) == sorted(str(r.pk) for r in records)
    return tasks, main


# What a pool process sends for one task that releases the next (docs/performance.md):
# SQL: the claim (UPDATE … RETURNING with its user, one statement) and the finish (the row's
# end and the stored result, one statement); no BEGIN/COMMIT, no savepoint, no new connection.
# Redis: the start's notice with the pick of the next task (one pipeline), kombu's publish of
# the pick (LPUSH), its confirmation (ZREM), and the cap's place with the end's notice (one
# pipeline).
CLAIM_AND_FINISH = ["WITH", "WITH"]
RELEASING = ["PIPELINE[PUBLISH+EVALSHA]", "LPUSH", "ZREM", "PIPELINE[ZREM+PUBLISH]"]
# The last task finds nothing left to release: no publish, no confirmation.
LAST = ["PIPELINE[PUBLISH+EVALSHA]", "PIPELINE[ZREM+PUBLISH]"]


def test_one_task_costs_two_statements_and_four_redis_round_trips(worker_env, no_worker, tmp_path):
    tasks, main = run_counted(worker_env, tmp_path)
    # The first task of a process also opens its connections (PostgreSQL, kombu's producer).
    for task in tasks[1:]:
        assert task["sql"] == CLAIM_AND_FINISH, task
        assert task["connects"] == 0, task
    for task in tasks[1:-1]:
        assert task["redis"] == RELEASING, task
    assert tasks[-1]["redis"] == LAST
    # Celery's task events are off: the main process publishes none per task.
    assert main.get("PUBLISH", 0) < TASKS, main


def test_charged_by_time_the_settle_rides_in_the_ends_round_trip(
    worker_env, no_worker, tmp_path, settings
):
    """PQH_CHARGE=time: the settle (settle.lua) goes in the end's pipeline, no round trip more,
    and it did settle: the user's mean run time learned every one of the runs."""
    from pqh_site.core import core

    settings.PQH_CHARGE, settings.PQH_LEVEL_BOUNDS_SECONDS = "time", [1.0, 2.0, 3.0, 4.0, 5.0]
    tasks, _ = run_counted(
        worker_env, tmp_path, PQH_CHARGE="time", PQH_LEVEL_BOUNDS_SECONDS="1,2,3,4,5"
    )
    end = "PIPELINE[ZREM+PUBLISH+EVALSHA]"
    for task in tasks[1:]:
        assert task["sql"] == CLAIM_AND_FINISH, task
        assert task["redis"][-1] == end and "EVALSHA" not in task["redis"], task
    # A publish to a level queue kombu has not declared yet adds its declaration (LLEN, SADD):
    # once per queue, not per task.
    releasing = [task for task in tasks[1:-1] if task["redis"] == [*RELEASING[:-1], end]]
    assert len(releasing) >= TASKS - 3, [task["redis"] for task in tasks]
    user = TaskRecord.objects.get(pk=tasks[0]["task"]).user_id
    assert core().redis.hget(core().keys.estimate(user), "n") == str(TASKS)


def test_without_reuse_each_task_opens_a_connection(worker_env, no_worker, tmp_path):
    tasks, _ = run_counted(worker_env, tmp_path, PQH_WORKER_DB_REUSE="0")
    assert [task["connects"] for task in tasks] == [1] * TASKS
    assert all(task["sql"] == CLAIM_AND_FINISH for task in tasks)


def test_celery_events_cost_three_publishes_a_task_when_asked_for(worker_env, no_worker, tmp_path):
    _, main = run_counted(worker_env, tmp_path, PQH_TASK_EVENTS="1")
    # task-received, task-started, task-succeeded.
    assert main.get("PUBLISH", 0) >= 3 * TASKS, main
