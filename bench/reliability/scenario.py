"""What the reliability benchmark submits: the settings, the paced load of its HTTP clients.

`--clients` threads take the submissions 0..N-1 in order, each at its planned time (N / `--rate`),
for user `n mod users`, alternately to `POST /task` and `POST /api/tasks/`, each on a new
connection; every `--cancel-every`th accepted task is cancelled at once, every `--poll-every`th
submission is followed by a `GET /result/<id>`, and every `--fail-every`th asks its work to fail.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

FAULTS = ("kill", "db", "redis")
# When each fault starts, as a fraction of the submission phase: one after the other.
FAULT_AT = {"kill": 0.2, "db": 0.4, "redis": 0.75}
# The task: sleeps PQH_TASK_SECONDS, logs each completed run, fails when the submission asks.
WORK_CALLABLE = "bench.workload.sleep_and_log"


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """The pqh settings every process of the run shares."""
    return {
        "PQH_TASK_SECONDS": repr(args.task_seconds),
        "PQH_TASK_CALLABLE": WORK_CALLABLE,
        "PQH_TASK_TIME_LIMIT": str(args.time_limit),
        # Above the hard limit (time limit + 30 s), as pqh requires.
        "PQH_VISIBILITY_TIMEOUT": str(args.time_limit + 35),
        "PQH_RESTORE_SECONDS": "2",
        "PQH_RECOVER_LOST_SECONDS": "3",
        "PQH_RECONCILE_SECONDS": "3",
        "PQH_RELEASE_RECOVER_SECONDS": "3",
        "PQH_MAX_WAIT_SECONDS": "30",
    }


@dataclass
class Call:
    """One HTTP call a client made, and its answer."""

    kind: str  # submit, cancel, poll
    user: str
    n: int
    started: float  # seconds since the run's start
    ended: float
    status: int  # 0: no answer (connection error)
    task_id: str = ""
    error: str = ""


@dataclass
class Load:
    """What the clients did, shared by their threads."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def accepted(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.kind == "submit" and c.status == 202]


class Client(threading.Thread):
    """One HTTP client, taking the next submission off a shared plan at the planned time."""

    def __init__(self, *, port, users, plan, start, rate, load, args, rng_seed):
        super().__init__(daemon=True)
        self.port, self.users, self.plan, self.t0, self.rate = port, users, plan, start, rate
        self.load, self.args = load, args
        self.rng = random.Random(rng_seed)

    def request(self, method: str, path: str, token: str, body: Any = None):
        """One request on a connection of its own: nothing is ever sent twice."""
        data = None if body is None else json.dumps(body)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw or b"null")
        except ValueError:
            return response.status, {"raw": raw[:200].decode(errors="replace")}

    def call(self, kind: str, user: str, n: int, method: str, path: str, body: Any = None):
        started = time.monotonic() - self.t0
        try:
            status, answer = self.request(method, path, self.users[user], body)
            error = "" if status < 500 else json.dumps(answer)[:200]
        except (OSError, http.client.HTTPException) as exc:
            status, answer, error = 0, {}, f"{type(exc).__name__}: {exc}"
        task_id = answer.get("task_id", "") if isinstance(answer, dict) else ""
        self.load.add(
            Call(kind, user, n, started, time.monotonic() - self.t0, status, task_id, error)
        )
        return status, answer

    def run(self) -> None:
        names = list(self.users)
        for n in self.plan:
            # Paced: submission n goes at t0 + n / rate, whichever client takes it.
            delay = self.t0 + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            user = names[n % len(names)]
            body = {"x": {"n": n, "fail": n % self.args.fail_every == 0}}
            path = "/task" if n % 2 else "/api/tasks/"
            status, answer = self.call("submit", user, n, "POST", path, body)
            task_id = answer.get("task_id") if status == 202 else None
            if task_id and n % self.args.cancel_every == 0:
                self.call("cancel", user, n, "DELETE", f"/api/tasks/{task_id}/")
            if n % self.args.poll_every == 0:
                accepted = [c for c in self.load.accepted() if c.user == user]
                if accepted:
                    poll = self.rng.choice(accepted)
                    self.call("poll", user, poll.n, "GET", f"/result/{poll.task_id}")


class Plan:
    """The submission numbers 0..N-1, handed out in order to whichever client asks."""

    def __init__(self, total: int) -> None:
        self.counter = itertools.count()
        self.total = total
        self.lock = threading.Lock()

    def __iter__(self):
        while True:
            with self.lock:
                n = next(self.counter)
            if n >= self.total:
                return
            yield n
