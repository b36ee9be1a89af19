"""fairqueue.scripts.Batch on a real redis-server: one round trip, and NOSCRIPT recovered."""

import redis

from fairqueue.scripts import Batch, Scripts
from fairqueue.testing import PrivateRedis, count_redis_round_trips


def test_a_batch_is_one_round_trip_and_loads_a_script_the_server_forgot(tmp_path):
    server = PrivateRedis(tmp_path).start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        scripts = Scripts(client)
        # A server that never saw the script (or restarted): EVALSHA answers NOSCRIPT.
        client.script_flush()
        batch = Batch(client, scripts)
        batch.command("SET", "{t}:a", "1")
        bucket = '{"now": 1000, "interval": 1, "burst": 5}'
        batch.script("rate", keys=["{t}:r"], args=[bucket], then=lambda answer: ("ran", answer))
        batch.command("INCR", "{t}:a")
        answers = batch.execute(raise_on_error=False)
        assert answers[0] is True and answers[2] == 2
        # Sent again by itself, after loading: it ran, and its answer went through `then`.
        assert answers[1] == ("ran", [1, "0"])
        assert client.script_exists(scripts["rate"].sha) == [True]
        # Now the server knows it: everything in one round trip.
        batch = Batch(client, scripts)
        batch.command("INCR", "{t}:a")
        batch.command("GET", "{t}:a")
        with count_redis_round_trips() as calls:
            assert batch.execute() == [3, "3"]
        assert calls == ["PIPELINE"]
    finally:
        server.stop()
