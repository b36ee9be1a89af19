"""Counting what a worker does per task, from inside its processes (loaded with --include).

A worker started with `--include tests.worker_counts` and PQH_TEST_COUNTS_FILE set appends one
JSON line per task its pool runs: the SQL statements (Django's execute wrappers), the Redis
round trips (a command, or one pipeline: redis-py's client, which kombu uses too) and the
PostgreSQL connections opened, from task_prerun to task_postrun (the claim to the finish and
everything between). The worker's main process (the consumer: fetching, acknowledging, Celery's
events) appends one line of its Redis commands by name when it shuts down.
"""

import json
import os

import redis
from celery.signals import task_postrun, task_prerun, worker_shutdown
from django.db import connection
from django.db.backends.signals import connection_created
from redis.client import Pipeline

_counting = False
_sql: list[str] = []
_redis: list[str] = []
_main: dict[str, int] = {}
_connects = [0]
_original_execute = redis.Redis.execute_command
_original_pipeline = Pipeline.execute


def _execute_command(self, *args, **kwargs):
    name = "PIPELINE" if isinstance(self, Pipeline) else str(args[0]).upper()
    if not isinstance(self, Pipeline):
        if _counting:
            _redis.append(name)
        _main[name] = _main.get(name, 0) + 1
    return _original_execute(self, *args, **kwargs)


def _pipeline_execute(self, *args, **kwargs):
    names = "+".join(str(c[0][0]).upper() for c in self.command_stack)
    if _counting:
        _redis.append(f"PIPELINE[{names}]")
    _main[f"PIPELINE[{names}]"] = _main.get(f"PIPELINE[{names}]", 0) + 1
    return _original_pipeline(self, *args, **kwargs)


redis.Redis.execute_command = _execute_command
Pipeline.execute = _pipeline_execute


def _wrapper(execute, sql, params, many, context):
    if _counting:
        _sql.append(sql.split()[0].upper() if sql.strip() else sql)
    return execute(sql, params, many, context)


def _connected(sender=None, connection=None, **kwargs):
    if _counting:
        _connects[0] += 1


connection_created.connect(_connected, weak=False)


def _write(line: dict) -> None:
    path = os.environ.get("PQH_TEST_COUNTS_FILE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(line) + "\n")


@task_prerun.connect(weak=False)
def _start(task_id=None, task=None, **kwargs):
    global _counting
    if task is None or task.name != "pqh.run":
        return
    _sql.clear(), _redis.clear()
    _connects[0] = 0
    if _wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(_wrapper)
    _counting = True


@task_postrun.connect(weak=False)
def _stop(task_id=None, task=None, state=None, **kwargs):
    global _counting
    if not _counting:
        return
    _counting = False
    _write(
        {
            "task": task_id,
            "state": state,
            "sql": list(_sql),
            "redis": list(_redis),
            "connects": _connects[0],
        }
    )


@worker_shutdown.connect(weak=False)
def _main_totals(**kwargs):
    _write({"main": dict(_main)})
