"""Count Redis round trips made by pqh's shared client (a count, not a time)."""

from contextlib import contextmanager

import redis
from redis.client import Pipeline


@contextmanager
def count_redis_round_trips():
    """Yield a list whose length is the number of round trips made inside the block."""
    calls: list[str] = []
    original_execute = redis.Redis.execute_command
    original_pipeline = Pipeline.execute

    def execute_command(self, *args, **kwargs):
        if not isinstance(self, Pipeline):
            calls.append(str(args[0]))
        return original_execute(self, *args, **kwargs)

    def pipeline_execute(self, *args, **kwargs):
        calls.append("PIPELINE")
        return original_pipeline(self, *args, **kwargs)

    redis.Redis.execute_command = execute_command
    Pipeline.execute = pipeline_execute
    try:
        yield calls
    finally:
        redis.Redis.execute_command = original_execute
        Pipeline.execute = original_pipeline
