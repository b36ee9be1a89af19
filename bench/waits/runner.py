"""The run, phase by phase: sync routes alone, waiters held (memory, threads, idle CPU, the sync
routes beside them), the ends (latency), and a client that wants its result at once.

Everything runs in one asyncio loop; what blocks (wrk, the ORM) runs in a thread beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench.api.driver import wrk
from bench.api.scenarios import write_targets
from bench.harness import percentiles

from .clients import FINAL, Outcome, call, event_stream, long_poll
from .scenarios import cancel_pending, ensure_users, finished_at, submit_all, waiting_users
from .stack import Stack

HOST = "127.0.0.1"


class NoticeClock:
    """A subscriber of the notices channel beside the wait server's: when each `ended` notice
    (published after the finish's commit) reached a client of Redis."""

    def __init__(self, url: str, channel: str):
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(channel)
        self.pubsub.get_message(timeout=2)  # the subscription's confirmation
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message and message.get("type") == "message":
                stamp = time.time()
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    notice = json.loads(message["data"])
                    if notice.get("kind") == "ended":
                        self.seen.setdefault(str(notice["task"]), stamp)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.pubsub.close()
        self.client.close()


async def healthz_waiting(stack: Stack) -> int:
    _, _, body, _ = await call(HOST, stack.args.port + 1, "GET", "/healthz", "")
    return json.loads(body)["waiting"]


async def until_held(stack: Stack, count: int, timeout: float) -> int:
    """Wait until the wait server says `count` waiters are registered; return what it says."""
    deadline = time.monotonic() + timeout
    waiting = -1
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError, OSError):  # a server too busy to answer
            waiting = await asyncio.wait_for(healthz_waiting(stack), 5)
        if waiting >= count:
            return waiting
        await asyncio.sleep(0.25)
    raise RuntimeError(f"only {waiting} of {count} waiters registered within {timeout:.0f} s")


def server_state(stack: Stack) -> dict[str, Any]:
    return {"rss_bytes": stack.waits.rss_bytes(), "threads": stack.waits.threads()}


async def sync_routes(args, stack: Stack, wrk_users, targets: dict[str, Path], label: str):
    """wrk on POST /task and GET /result/<id> at the web server; the POSTs' tasks cancelled."""
    out = {}
    for route, mode in (("post_task", "post-task"), ("get_result", "get-result")):
        cell = await asyncio.to_thread(
            wrk,
            stack.web.url,
            mode,
            targets[route],
            connections=args.connections,
            seconds=args.wrk_seconds,
            pids=stack.web.processes,
        )
        out[route] = cell
        print(
            f"  {label:<5} {route:<10} {cell['rps']:>8.1f} req/s  p50 {cell['p50_ms']:.1f} ms  "
            f"p99 {cell['p99_ms']:.1f} ms  cpu {cell['cpu_ms_per_request']} ms/req  "
            f"non-2xx {cell['non_2xx']}",
            flush=True,
        )
    await asyncio.to_thread(cancel_pending, [u for u, _ in wrk_users], targets["keep"])
    return out


async def measure_idle(stack: Stack, seconds: float) -> dict[str, float]:
    """The wait server's CPU over `seconds` while nobody's task ends."""
    before, t0 = stack.waits.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    spent, took = stack.waits.cpu_seconds() - before, time.monotonic() - t0
    return {"seconds": round(took, 2), "cpu_seconds": round(spent, 3),
            "cores": round(spent / took, 4)}  # fmt: skip


async def run_waits(args, stack: Stack, workdir: Path, results: dict[str, Any]) -> None:
    from pqh_site.core import core

    total = args.polls + args.streams
    users = await asyncio.to_thread(waiting_users, total)
    wrk_users = await asyncio.to_thread(ensure_users, "benchwaitwrk", 20)
    web_port, wait_port = args.port, args.port + 1

    # The tasks wrk reads: ended (cancelled) at once, so every phase reads the same rows.
    read_ids = await submit_all(HOST, web_port, [t for _, t in wrk_users] * 5, 0)
    await asyncio.to_thread(cancel_pending, [u for u, _ in wrk_users])
    tokens_of = {u: t for u, t in wrk_users}
    targets = {
        "post_task": write_targets(workdir / "tokens.txt", [(t, "-") for _, t in wrk_users]),
        "get_result": write_targets(
            workdir / "get.txt",
            [(tokens_of[wrk_users[i % len(wrk_users)][0]], tid) for i, tid in enumerate(read_ids)],
        ),
        "keep": set(read_ids),
    }
    print("warm-up (unrecorded)", flush=True)
    for route, mode in (("post_task", "post-task"), ("get_result", "get-result")):
        await asyncio.to_thread(wrk, stack.web.url, mode, targets[route], connections=8, seconds=2)
    await asyncio.to_thread(cancel_pending, [u for u, _ in wrk_users], targets["keep"])

    print("sync routes, no waiter", flush=True)
    results["sync"] = {"none_before": await sync_routes(args, stack, wrk_users, targets, "none")}

    # The waiters' tasks: one each, of no length, queued (the worker is not running yet).
    tokens = [users[i // 50 % len(users)][1] for i in range(total)]
    task_ids = await submit_all(HOST, web_port, tokens, 0)
    outcomes = [
        Outcome(tid, "poll" if i < args.polls else "stream") for i, tid in enumerate(task_ids)
    ]
    connects = asyncio.Semaphore(100)
    memory = {"idle": server_state(stack)}
    print(f"holding {args.polls} long polls", flush=True)
    clients = [
        asyncio.create_task(
            long_poll(HOST, wait_port, tokens[i], o.task_id, args.wait, o, connects)
        )
        for i, o in enumerate(outcomes[: args.polls])
    ]
    memory["polls_registered"] = await until_held(stack, args.polls, 120)
    await asyncio.sleep(1)
    memory["polls"] = server_state(stack)
    print(f"holding {args.streams} event streams", flush=True)
    clients += [
        asyncio.create_task(
            event_stream(HOST, wait_port, tokens[args.polls + i], o.task_id, o, connects)
        )
        for i, o in enumerate(outcomes[args.polls :])
    ]
    memory["all_registered"] = await until_held(stack, total, 120)
    await asyncio.sleep(1)
    memory["all"] = server_state(stack)
    results["held"] = memory
    print(f"  {json.dumps(memory)}", flush=True)

    print(f"idle: {args.idle_seconds:g} s with {total} waiters and no end", flush=True)
    results["idle"] = await measure_idle(stack, args.idle_seconds)
    print(f"  {results['idle']}", flush=True)
    print("sync routes, waiters held", flush=True)
    results["sync"]["held"] = await sync_routes(args, stack, wrk_users, targets, "held")
    results["sync"]["held_registered"] = await healthz_waiting(stack)

    the_core = core()
    clock = NoticeClock(args.redis_url, the_core.keys.notices)
    print("ends: the worker starts", flush=True)
    started = time.monotonic()
    cpu_before = stack.waits.cpu_seconds()
    try:
        await asyncio.to_thread(stack.start_worker)
        done, pending = await asyncio.wait(clients, timeout=args.end_timeout)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                outcomes_error = repr(task.exception())
                results.setdefault("client_exceptions", []).append(outcomes_error[:300])
    finally:
        clock.close()
    took = time.monotonic() - started
    cpu_spent = stack.waits.cpu_seconds() - cpu_before
    ends = await asyncio.to_thread(finished_at, task_ids)
    results["ends"] = latency_figures(outcomes, ends, clock.seen, took, cpu_spent)
    print(f"  {json.dumps(results['ends']['summary'])}", flush=True)

    print("sync routes, no waiter (worker stopped)", flush=True)
    await asyncio.to_thread(stack.stop_worker)
    results["sync"]["none_after"] = await sync_routes(args, stack, wrk_users, targets, "none")
    results["sync"]["ratio"] = sync_ratio(results["sync"])


def latency_figures(outcomes, ends, seen, took, cpu_spent) -> dict[str, Any]:
    """First byte of the final answer minus the finish's finished_at, and minus the notice."""
    out: dict[str, Any] = {"summary": {}, "seconds": round(took, 1),
                           "wait_server_cpu_seconds": round(cpu_spent, 2)}  # fmt: skip
    first = min((o.held_at for o in outcomes if o.held_at), default=0)
    # (seconds since the first waiter, ms from finished_at, requests) of every answered waiter.
    out["samples"] = [
        [o.kind[0], round(o.ended_at - first, 3), round(1000 * (o.ended_at - ends[o.task_id]), 1),
         o.requests]
        for o in outcomes
        if o.ended_at is not None and o.task_id in ends
    ]  # fmt: skip
    # Latency by 5-second slice of the run (since the first waiter was held): when the ends
    # meet the long polls' second round (30 s after they were opened), both show.
    slices: dict[int, list[float]] = {}
    for _, at, ms, _ in out["samples"]:
        slices.setdefault(int(at // 5) * 5, []).append(ms)
    out["by_5s"] = {
        f"{start}-{start + 5}s": percentiles(values) for start, values in sorted(slices.items())
    }
    for kind in ("poll", "stream"):
        mine = [o for o in outcomes if o.kind == kind]
        got = [o for o in mine if o.ended_at is not None and o.task_id in ends]
        from_commit = [1000 * (o.ended_at - ends[o.task_id]) for o in got]
        from_notice = [1000 * (o.ended_at - seen[o.task_id]) for o in got if o.task_id in seen]
        out[kind] = {
            "clients": len(mine),
            "answered": len(got),
            "requests": sum(o.requests for o in mine),
            "errors": sum(len(o.errors) for o in mine),
            "error_samples": [e for o in mine for e in o.errors][:5],
            "from_finished_at_ms": percentiles(from_commit),
            "from_notice_ms": percentiles(from_notice),
        }
        out["summary"][kind] = {
            "answered": len(got),
            "p50_ms": out[kind]["from_finished_at_ms"]["p50"],
            "p99_ms": out[kind]["from_finished_at_ms"]["p99"],
        }
    return out


def sync_ratio(sync: dict[str, Any]) -> dict[str, float | None]:
    """Requests/s with waiters held ÷ the mean of the runs with none (before and after)."""
    ratios = {}
    for route in ("post_task", "get_result"):
        none = [sync[k][route]["rps"] for k in ("none_before", "none_after") if k in sync]
        base = sum(none) / len(none) if none else 0
        ratios[route] = round(sync["held"][route]["rps"] / base, 3) if base else None
    return ratios


async def run_clients(args, stack: Stack, results: dict[str, Any]) -> None:
    """One client wanting its result at once, on `--client-seconds` tasks: long polls on the
    wait server against GET /result/<id> on the web server every second; rounds alternate."""
    users = await asyncio.to_thread(ensure_users, "benchwaitcli", 2)
    await asyncio.to_thread(stack.start_worker)
    rounds: dict[str, list[dict[str, Any]]] = {"long_poll": [], "poll_each_second": []}
    servers = (stack.web, stack.waits)
    for rnd in range(args.client_rounds):
        for mode in (
            ("long_poll", "poll_each_second") if rnd % 2 == 0 else ("poll_each_second", "long_poll")
        ):
            cpu_before = sum(s.cpu_seconds() for s in servers)
            ids = await submit_all(HOST, args.port, [t for _, t in users], args.client_seconds)
            learned = await asyncio.gather(
                *(one_client(args, mode, t, tid) for (_, t), tid in zip(users, ids, strict=True))
            )
            cpu = sum(s.cpu_seconds() for s in servers) - cpu_before
            ends = await asyncio.to_thread(finished_at, ids)
            row = {
                "tasks": len(ids),
                "requests_per_task": sum(n for n, _ in learned) / len(ids),
                "server_cpu_ms_per_task": round(1000 * cpu / len(ids), 1),
                "lateness_ms": [round(1000 * (at - ends[tid]), 1)
                                for (_, at), tid in zip(learned, ids, strict=True)],
            }  # fmt: skip
            rounds[mode].append(row)
            print(f"  round {rnd + 1} {mode:<17} {json.dumps(row)}", flush=True)
    await asyncio.to_thread(stack.stop_worker)
    summary = {}
    for mode, rows in rounds.items():
        late = [x for r in rows for x in r["lateness_ms"]]
        summary[mode] = {
            "tasks": sum(r["tasks"] for r in rows),
            "requests_per_task": round(sum(r["requests_per_task"] for r in rows) / len(rows), 1),
            "server_cpu_ms_per_task": round(
                sum(r["server_cpu_ms_per_task"] for r in rows) / len(rows), 1
            ),
            "lateness_ms": percentiles(late),
        }
    results["clients"] = {"rounds": rounds, "summary": summary}


async def one_client(args, mode: str, token: str, task_id: str) -> tuple[int, float]:
    """Ask until the task is final; return (requests, when the final answer's head arrived).

    A client polling each second starts at a random point of its second: the tasks last a
    whole number of seconds from their submission, and polls in step with them would always
    just miss the end (a second late) or just catch it."""
    requests = 0
    if mode == "poll_each_second":
        await asyncio.sleep(random.random())
    while True:
        requests += 1
        if mode == "long_poll":
            port, path = args.port + 1, f"/result/{task_id}?wait={args.wait:g}"
        else:
            port, path = args.port, f"/result/{task_id}"
        asked = time.monotonic()
        status, _, body, stamp = await call(HOST, port, "GET", path, token)
        if status == 200 and json.loads(body)["task_status"] in FINAL:
            return requests, stamp
        if mode == "poll_each_second":
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - asked)))
