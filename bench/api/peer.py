"""The peer beside pqh: the service a Django team writes without pqh (bench/peer/).

It runs on a database of its own (`--peer-database-url`, created and migrated here) and a
redis-server of its own (its broker, on a free port, keeping nothing on disk), served by the
Procfile's `web:` line with the peer's WSGI application in place of pqh's. Its users are the
benchmark's users with the same token keys, so wrk's targets file serves both; its poll
targets are task ids it answered to `POST /task` (queued: no worker runs, so no result row).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.harness import ROOT, clean_environ
from fairqueue.testing import PrivateRedis

from .driver import pg_backends_of
from .server import Server, http_get, procfile_web

PQH_APP = "pqh_site.wsgi:application"
PEER_APP = "bench.peer.proj.wsgi:application"
PEER_SETTINGS = "bench.peer.proj.settings"


def peer_database_url(args: argparse.Namespace) -> str:
    """`--peer-database-url`, or the benchmark's database URL with `_peer` after its name."""
    return args.peer_database_url or f"{args.database_url}_peer"


def peer_command(args: argparse.Namespace) -> str:
    """The same server line as pqh's (the Procfile's, or `--web`), serving the peer."""
    command = args.web or procfile_web()
    if PQH_APP not in command:
        raise SystemExit(f"the web command does not serve {PQH_APP}: cannot serve the peer with it")
    return command.replace(PQH_APP, PEER_APP)


class Peer:
    """The peer's redis-server, database and web server; `server` is a bench.api Server."""

    def __init__(self, args: argparse.Namespace, workdir: Path, *, port: int):
        self.args = args
        self.database_url = peer_database_url(args)
        self.redis = PrivateRedis(workdir / "peer-redis")
        self.env: dict[str, str] = {}
        self.server = Server(
            args, workdir, command=peer_command(args), port=port, tag="peer", probe=""
        )
        self._db = None
        self.backends = None

    def _manage(self, *argv: str, stdin: str = "") -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "django", *argv],
            input=stdin,
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"peer: django {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
        return proc.stdout

    def start(self, users: list[tuple[int, str, str, int]]) -> None:
        """Start its Redis, create and migrate its database, create the users, start it."""
        import dj_database_url
        import psycopg

        from pqh_site.database import connect_params, database_create_if_missing

        self.redis.start()
        db = dj_database_url.parse(self.database_url)
        database_create_if_missing(db)
        self.env = {
            **clean_environ(),
            "DJANGO_SETTINGS_MODULE": PEER_SETTINGS,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.redis.url,
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{Path(sys.executable).parent}:{clean_environ().get('PATH', '')}",
        }
        self._manage("migrate", "--verbosity", "0")
        self._manage(
            "peer_users", stdin="".join(f"{name} {token}\n" for _, name, token, _ in users)
        )
        self._db = psycopg.connect(dbname=db["NAME"], autocommit=True, **connect_params(db))
        self.backends = pg_backends_of(self._db)
        self.reset()
        self.server.extra_env = {**self.env, "PQH_BIND": f"127.0.0.1:{self.server.port}"}
        # The probe: a poll of an unknown task answers 200 PENDING once the server is up.
        self.server.probe = "/result/00000000-0000-4000-8000-000000000000"
        self.server.start(users[0][2])

    def reset(self) -> None:
        """Empty its broker and its stored results: every cell starts from the same state."""
        import redis

        with redis.Redis(port=self.redis.port) as client:
            client.flushall()  # its own redis-server: nobody else's keys
        self._db.execute("TRUNCATE django_celery_results_taskresult")

    def poll_targets(self, users: list, count: int) -> list[tuple[str, str]]:
        """Submit `count` tasks to the peer (spread over the users); (token, task id) of each."""
        import http.client

        targets = []
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            for i in range(count):
                token = users[i % len(users)][2]
                conn.request(
                    "POST",
                    "/task",
                    json.dumps({"x": {"prompt": "bench"}}),
                    {"Content-Type": "application/json", "Authorization": f"Token {token}"},
                )
                response = conn.getresponse()
                body = response.read()
                if response.status != 202:
                    raise RuntimeError(f"the peer answered {response.status}: {body[:200]!r}")
                targets.append((token, json.loads(body)["task_id"]))
        finally:
            conn.close()
        status, _ = http_get(self.server.url, f"/result/{targets[0][1]}", token=targets[0][0])
        if status != 200:
            raise RuntimeError(f"the peer's poll answered {status}")
        return targets

    def stop(self) -> None:
        self.server.stop()
        if self._db is not None:
            self._db.close()
        self.redis.stop()
