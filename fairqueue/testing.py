"""Real parts for tests and benchmarks: a private Redis, a TCP proxy that can be cut, a counter.

- `PrivateRedis`: a `redis-server` of the caller's own on a free port, keeping nothing on disk,
  which can be restarted empty.
- `TcpProxy`: stands between processes and PostgreSQL (or any TCP server) and can be cut:
  existing connections are dropped and new ones refused until it is restored.
- `count_redis_round_trips`: counts the Redis round trips made inside a block (a count, not a
  time).

They never touch the machine's shared servers, and import no Django: the tests under tests/ and
the benchmarks under bench/ use the same ones.
"""

import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.client import Pipeline


def free_port() -> int:
    """Return a TCP port on the loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server started by the caller, on its own port, keeping nothing on disk."""

    def __init__(self, workdir: Path, port: int | None = None, *, options: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.workdir = workdir
        self.options = options  # more redis-server options (--cluster-enabled yes, ...)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / f"redis-{self.port}.log"),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Kill the server (SIGKILL: nothing is saved, as after a crash)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart_empty(self, down_seconds: float = 0.0) -> None:
        """Kill the server and start it again on the same port with no data."""
        self.stop()
        time.sleep(down_seconds)
        self.start()


def _cluster_port() -> int:
    """A free port for a cluster node: below 55536, with its bus port (+10000) free too."""
    for _ in range(100):
        port = random.randint(20000, 55000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port for a Redis Cluster node")


class PrivateRedisCluster:
    """A Redis Cluster of `size` primaries started by the caller on free ports, no replicas,
    keeping nothing on disk (redis-server --cluster-enabled yes, then redis-cli --cluster
    create). `url` names its first node: a cluster client finds the others from there."""

    def __init__(self, workdir: Path, size: int = 3):
        self.nodes = [
            PrivateRedis(
                workdir / f"node{i}",
                _cluster_port(),
                options=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(workdir / f"node{i}" / "nodes.conf"),
                ),
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> "PrivateRedisCluster":
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0"]
                + ["--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=30,
            )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all(self._state_ok(node.port) for node in self.nodes):
                    return self
                time.sleep(0.1)
            raise RuntimeError("the private Redis Cluster did not reach cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _state_ok(port: int) -> bool:
        info = redis.Redis(port=port, decode_responses=True).execute_command("CLUSTER INFO")
        return info.get("cluster_state") == "ok"  # redis-py parses the reply into a dict

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class TcpProxy:
    """Forward 127.0.0.1:<port> to an upstream address; `cut()` it to simulate an outage."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.cut_count = 0

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: cut or stopped
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones (the server looks down)."""
        self.cut_count += 1
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
            if self._thread is not None:
                self._thread.join(timeout=5)
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            self._close(sock)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self.cut()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._sockets) // 2


@contextmanager
def count_redis_round_trips() -> Iterator[list[str]]:
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
