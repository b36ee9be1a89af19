"""What a pick, an enqueue and a position cost in Redis, with and without teams (issue 20).

Pure fairqueue, no Django: a `fairqueue.core.Core` on a redis-server of its own (a
`fairqueue.testing.PrivateRedis` on a free port, nothing kept on disk). For each shape it fills
one level with a backlog, then times calls made for 10 foreground users:

- `teams`: 10,000 backlogged users in 1,000 teams of 10, and the 10 foreground users in 2 teams
  of 5 (the two-step pick: team furthest behind, then its member furthest behind);
- `no-teams`: the same 10,000 users and 10 foreground users in no team (every user a group of
  its own: the single-level path as before teams);
- `small`: only the 10 foreground users in 2 teams, nothing else waiting.

Per call kind it reports Redis's own time (`INFO commandstats`, usec_per_call of evalsha, reset
before each kind with CONFIG RESETSTAT), and the round trip seen by the client:

- `enqueue_bare`: one task of a foreground user, without its position;
- `enqueue`: the same with its position (as a submission that answers a position does); the two
  in alternate chunks of 10, so that both see the same B (a team's waiting tasks, which each
  enqueue adds to and a team member's enqueue walks), each chunk's cost kept with its B;
- `position`: the places of one foreground task (what GET /api/task/<id>/ asks);
- `pick`: a worker took a task (the broker's lists emptied first, so every pick releases one).

And memory: `used_memory` before and after the fill, per backlogged user (with its waiting
tasks), and what teams add per team (teams minus no-teams, over 1,000 teams).

    .venv/bin/python -m bench.queue_cost            # 10,000 users, 200 calls of each kind
    .venv/bin/python -m bench.queue_cost --quick    # 1,000 users in 100 teams, 50 calls

Writes bench/results/queue_cost.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import ROOT, relative, run_meta
from fairqueue.config import Config
from fairqueue.core import Core
from fairqueue.queue import QueuedTask
from fairqueue.testing import PrivateRedis

FG_USERS = 10  # the foreground users, in 2 teams of 5 (or none)
FG_BASE = 10_000_000  # their user ids, above any backlogged user's


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.queue_cost",
        description="Redis time per pick, enqueue and position, with and without teams.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--users", type=int, default=10_000, help="backlogged users")
    p.add_argument("--team-size", type=int, default=10, help="backlogged users per team")
    p.add_argument("--tasks-per-user", type=int, default=2, help="each backlogged user's tasks")
    p.add_argument("--calls", type=int, default=200, help="timed calls of each kind")
    p.add_argument("--charge", choices=("tasks", "time"), default="tasks", help="PQH_CHARGE")
    p.add_argument("--quick", action="store_true", help="1,000 users, 50 calls: a smoke run")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "queue_cost.json")
    args = p.parse_args(argv)
    if args.quick:
        args.users, args.calls = min(args.users, 1_000), min(args.calls, 50)
    if args.users < 1 or args.team_size < 1 or args.tasks_per_user < 1 or args.calls < 1:
        p.error("--users, --team-size, --tasks-per-user and --calls are at least 1")
    return args


class Shape:
    """One fill of the queue on a fresh key prefix, and the calls timed against it."""

    def __init__(self, server: PrivateRedis, name: str, args: argparse.Namespace):
        prefix = f"qc_{name.replace('-', '_')}"
        self.config = Config(
            redis_url=server.url,
            prefix=prefix,
            charge=args.charge,
            level_bounds=(1_000_000,),  # every task at level 0: one level holds the backlog
            default_cost=1.0,
            max_queued=10_000_000,
            broker_queues=(f"{prefix}:celery0", f"{prefix}:celery1"),
            broker_unacked=f"{prefix}:unacked",
        )
        self.core = Core(self.config)
        self.redis = self.core.redis
        for script in ("enqueue", "positions", "pick"):  # loaded now, not in a timed call
            self.redis.script_load(self.core.scripts[script].script)
        self.seq = 0
        self.now = time.time()

    def task(self, user: int, team: str) -> QueuedTask:
        self.seq += 1
        self.now += 1e-4
        return QueuedTask(
            task_id=f"t{self.seq}",
            seq=self.seq,
            user_id=user,
            level=0,
            weight=1,
            submitted=self.now,
            team=team,
            team_weight=1,
        )

    def fill(self, users: int, team_size: int | None, tasks_per_user: int) -> None:
        """Queue `tasks_per_user` tasks of each backlogged user, 500 tasks per call."""
        batch: list[QueuedTask] = []
        for _round in range(tasks_per_user):
            for u in range(1, users + 1):
                team = f"bg{(u - 1) // team_size}" if team_size else ""
                batch.append(self.task(u, team))
                if len(batch) == 500:
                    self.core.queue.add(batch, now=self.now, max_picks=0)
                    batch = []
        if batch:
            self.core.queue.add(batch, now=self.now, max_picks=0)

    def fg_team(self, i: int, teams: bool) -> str:
        return f"fg{i % 2}" if teams else ""

    def drain_broker(self) -> None:
        self.redis.delete(*self.config.broker_queues, self.config.broker_unacked)

    def timed(self, calls: int, call, prepare=None) -> dict[str, float]:
        """Run `call` `calls` times (each after `prepare`, untimed): Redis's evalsha time and
        the client's round trip."""
        self.redis.config_resetstat()
        rtt = []
        for i in range(calls):
            if prepare is not None:
                prepare()
            t = time.perf_counter()
            call(i)
            rtt.append((time.perf_counter() - t) * 1e6)
        return summary(self.redis.info("commandstats"), rtt)


def summary(commandstats: dict, rtt: list[float]) -> dict[str, float]:
    """Redis's evalsha calls and µs per call since the last CONFIG RESETSTAT; the round trips."""
    stats = commandstats.get("cmdstat_evalsha", {})
    return {
        "calls": int(stats.get("calls", 0)),
        "redis_usec_per_call": round(float(stats.get("usec_per_call", 0.0)), 1),
        "redis_usec": int(stats.get("usec", 0)),
        "client_usec_p50": round(statistics.median(rtt), 1),
        "client_usec_mean": round(statistics.fmean(rtt), 1),
    }


def timed_enqueues(shape: Shape, calls: int, enqueue, per_team: int) -> dict[str, dict]:
    """Enqueues without and with a position, in alternate chunks of 10, so both kinds see the
    same B (a foreground team's waiting tasks, which every enqueue adds to): per kind the
    totals, and per chunk the B it started at and Redis's µs per call."""
    out: dict[str, dict] = {}
    chunk, done = 10, 0
    for n in range(0, 2 * calls, chunk):
        kind, position = ("enqueue_bare", False) if (n // chunk) % 2 == 0 else ("enqueue", True)
        size = min(chunk, 2 * calls - n)
        shape.redis.config_resetstat()
        rtt = []
        b = per_team + done // 2
        for i in range(size):
            t = time.perf_counter()
            enqueue(done + i, position)
            rtt.append((time.perf_counter() - t) * 1e6)
        done += size
        part = summary(shape.redis.info("commandstats"), rtt)
        entry = out.setdefault(kind, {"calls": 0, "redis_usec": 0, "rtt": [], "by_b": []})
        entry["calls"] += part["calls"]
        entry["redis_usec"] += part["redis_usec"]
        entry["rtt"] += rtt
        entry["by_b"].append([b, part["redis_usec_per_call"]])
    for entry in out.values():
        rtt = entry.pop("rtt")
        entry["redis_usec_per_call"] = round(entry["redis_usec"] / max(1, entry["calls"]), 1)
        entry["client_usec_p50"] = round(statistics.median(rtt), 1)
        entry["client_usec_mean"] = round(statistics.fmean(rtt), 1)
        entry["fg_team_waiting"] = [entry["by_b"][0][0], per_team + done // 2]
    return out


def used_memory(server_client) -> int:
    return int(server_client.info("memory")["used_memory"])


def run_shape(server: PrivateRedis, name: str, args: argparse.Namespace) -> dict[str, Any]:
    shape = Shape(server, name, args)
    teams = name != "no-teams"
    users = 0 if name == "small" else args.users
    shape.redis.flushall()  # the private server only
    before = used_memory(shape.redis)
    t = time.monotonic()
    shape.fill(users, args.team_size if teams else None, args.tasks_per_user)
    fill_s = time.monotonic() - t
    after = used_memory(shape.redis)
    # The foreground users, backlogged too (5 tasks each), before any call is timed.
    fg = [FG_BASE + i for i in range(FG_USERS)]
    fg_tasks = [shape.task(u, shape.fg_team(i, teams)) for _ in range(5) for i, u in enumerate(fg)]
    shape.core.queue.add(fg_tasks, now=shape.now, max_picks=0)
    shape.drain_broker()
    out: dict[str, Any] = {
        "backlogged_users": users,
        "teams": (users + args.team_size - 1) // args.team_size if teams and users else 0,
        "waiting_tasks": shape.core.queue.waiting_count(),
        "fill_s": round(fill_s, 2),
        "used_memory_growth_bytes": after - before,
    }
    if users:
        out["bytes_per_user"] = round((after - before) / users, 1)

    def enqueue(i: int, position: bool = True) -> None:
        task = shape.task(fg[i % FG_USERS], shape.fg_team(i % FG_USERS, teams))
        shape.core.queue.add([task], now=shape.now, max_picks=0, position=position)
        mine.append(task)

    mine: list[QueuedTask] = []
    out.update(timed_enqueues(shape, args.calls, enqueue, len(fg_tasks) // 2))

    def position(i: int) -> None:
        task = mine[-1 - (i % len(mine))]
        (place,) = shape.core.queue.places([(task.task_id, task.seq, 0)], now=shape.now)
        if place is None:
            raise RuntimeError(f"{name}: task {task.task_id} lost its place")

    out["position"] = shape.timed(args.calls, position)

    # A worker took the task released last (it left the broker): the pick that follows releases
    # the next one. Emptying the broker's list and confirming the publish are not timed.
    last = [r.task_id for r in shape.core.queue.pick(now=shape.now, max_picks=1) or []]

    def took() -> None:
        shape.core.queue.confirm(last)
        shape.drain_broker()

    def pick(_i: int) -> None:
        released = shape.core.queue.pick(now=shape.now, max_picks=1, started=last[0])
        if not released:
            raise RuntimeError(f"{name}: a pick released nothing")
        last[:] = [r.task_id for r in released]

    if not last:
        raise RuntimeError(f"{name}: the first pick released nothing")
    out["pick"] = shape.timed(args.calls, pick, took)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM (e.g. a test's timeout) unwinds through the finally block: the server stops.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="pqh-queue-cost-"))).start()
    started = time.monotonic()
    results: dict[str, Any] = {"meta": {**run_meta(), "args": {}}, "shapes": {}}
    results["meta"]["args"] = {k: str(v) for k, v in vars(args).items()}
    try:
        for name in ("small", "no-teams", "teams"):
            results["shapes"][name] = run_shape(server, name, args)
            print(f"{name}: done ({time.monotonic() - started:.1f} s)", flush=True)
    finally:
        server.stop()
    shapes = results["shapes"]
    extra = (
        shapes["teams"]["used_memory_growth_bytes"] - shapes["no-teams"]["used_memory_growth_bytes"]
    )
    if shapes["teams"]["teams"]:
        # What teams add, over the same users and tasks: per team (with its members' tasks),
        # and per waiting task of a team member.
        results["bytes_per_team"] = round(extra / shapes["teams"]["teams"], 1)
        results["bytes_per_team_task"] = round(extra / (args.users * args.tasks_per_user), 1)
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    for line in table(results):
        print(line)
    print(f"wrote {relative(args.out)}")
    return 0


def table(results: dict[str, Any]) -> list[str]:
    """The summary: Redis µs per call (client round trip p50 beside it), memory."""
    lines = [
        "shape      users  teams  waiting | Redis us/call (client p50): enqueue, +position,"
        " position, pick | bytes/user"
    ]
    for name, s in results["shapes"].items():
        cells = "  ".join(
            f"{s[k]['redis_usec_per_call']:7.1f} ({s[k]['client_usec_p50']:6.1f})"
            for k in ("enqueue_bare", "enqueue", "position", "pick")
        )
        lines.append(
            f"{name:9s} {s['backlogged_users']:6d} {s['teams']:6d} {s['waiting_tasks']:8d} | "
            f"{cells} | {s.get('bytes_per_user', '-')}"
        )
    teams = results["shapes"]["teams"]
    b0, b1 = teams["enqueue_bare"]["fg_team_waiting"]
    lines.append(f"(B, a foreground team's waiting tasks, grows {b0}..{b1} over the enqueues)")
    for name, s in results["shapes"].items():
        for kind in ("enqueue_bare", "enqueue"):
            series = s[kind]["by_b"]
            first, last = series[0], series[-1]
            lines.append(
                f"  {name} {kind}: {first[1]} us/call at B={first[0]}, {last[1]} at B={last[0]}"
            )
    if "bytes_per_team" in results:
        lines.append(
            f"teams add {results['bytes_per_team']} bytes per team with its members' tasks, "
            f"{results['bytes_per_team_task']} per waiting task (teams - no-teams)"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
