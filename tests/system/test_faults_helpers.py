"""fairqueue.testing's fault helpers: a private Redis restarts empty, a cut proxy refuses."""

import psycopg
import pytest
import redis

from fairqueue.testing import PrivateRedis, TcpProxy


def test_a_private_redis_restarts_empty(tmp_path):
    server = PrivateRedis(tmp_path).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        server.restart_empty()
        assert client.get("k") is None
    finally:
        server.stop()


def test_a_cut_proxy_drops_connections_and_a_restored_one_serves_again():
    proxy = TcpProxy(5432).start()
    try:
        params = dict(host="127.0.0.1", port=proxy.port, user="postgres", dbname="postgres")
        with psycopg.connect(**params, connect_timeout=3) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            proxy.cut()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(**params, connect_timeout=3)
        proxy.restore()
        with psycopg.connect(**params, connect_timeout=3) as conn:
            assert conn.execute("SELECT 2").fetchone() == (2,)
    finally:
        proxy.stop()
