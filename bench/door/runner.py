"""The door benchmark's phases: the limits' cost, tries before a refusal, the normal poll, and
each attacker alone and beside the quiet and the heavy user.

Each phase starts from the same state (`reset_state`: no task, empty queues and windows, one
task for each user that polls; the request-rate buckets and remembered credentials are kept, so
a rate-limited attacker stays refused between its phases) and is metered (`metered`): CPU of
the server's processes and of the benchmark database's PostgreSQL backends (bench.api.driver),
of wrk (wait4), of this process, and of the whole machine, from which the CPU of whatever
else runs on it follows. Nothing here touches the database while a phase is metered.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api.driver import cpu_meter, cpu_spent
from bench.api.scenarios import queue_clear
from bench.api.server import Server

from .analysis import quiet_summary
from .clients import WrkRun, open_loop, submit_one, tries_admin, tries_basic
from .scenarios import ATTACKERS, LIMITS_OFF, Attacker, attacker_args

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLLERS = ("poller", "reader", "on", "off")  # users whose phases poll their own task


@dataclass
class Context:
    args: argparse.Namespace
    server: Server
    users: dict[str, dict]
    workdir: Path
    tag: str
    log: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        print(line, flush=True)


def system_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores) since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK  # less idle and iowait


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@contextlib.contextmanager
def metered(pids_of):
    """Meter a phase: yields a dict that gets wall time, load, and CPU of the server (processes
    and PostgreSQL backends), of this process and of the machine; wrk's is added by the phase."""
    record: dict[str, Any] = {"load1_before": round(os.getloadavg()[0], 2)}
    cpu0, busy0, own0 = cpu_meter(pids_of), system_busy_seconds(), own_cpu_seconds()
    t0 = time.monotonic()
    yield record
    # Requests wrk gave up on at its deadline may still be served: let them drain.
    time.sleep(0.3)
    wall = time.monotonic() - t0
    record.update(
        wall_s=round(wall, 2),
        server_cpu_s=round(cpu_spent(cpu0, cpu_meter(pids_of)), 3),
        bench_cpu_s=round(own_cpu_seconds() - own0, 3),
        machine_busy_s=round(system_busy_seconds() - busy0, 3),
    )


def finish_record(record: dict, *wrk_results: dict) -> dict:
    """Add wrk's CPU and what the rest of the machine spent (in cores) to a metered record."""
    wrk_cpu = sum(r["wrk_cpu_s"] for r in wrk_results)
    ours = record["server_cpu_s"] + record["bench_cpu_s"] + wrk_cpu
    wall = record["wall_s"] or 1.0
    record.update(
        wrk_cpu_s=round(wrk_cpu, 3),
        server_cores=round(record["server_cpu_s"] / wall, 2),
        wrk_cores=round(wrk_cpu / wall, 2),
        bench_cores=round(record["bench_cpu_s"] / wall, 2),
        machine_cores=round(record["machine_busy_s"] / wall, 2),
        other_cores=round(max(0.0, record["machine_busy_s"] - ours) / wall, 2),
    )
    return record


def reset_state(ctx: Context) -> None:
    """No task, empty queues and windows; one fresh task for each user that polls its own."""
    time.sleep(0.2)
    queue_clear(ctx.args.prefix, keep=("rate",))
    for key in POLLERS:
        ctx.users[key]["task"] = submit_one(ctx.server.url, ctx.users[key]["token"])


def threads_for(connections: int) -> int:
    return 2 if connections >= 16 else 1


def wrk_run(url: str, mode: str, args: list[str], *, connections: int, seconds: float) -> WrkRun:
    return WrkRun(
        url, mode, args, connections=connections, seconds=seconds, threads=threads_for(connections)
    )


def failures_recorded(address: str = "127.0.0.1") -> int:
    """Failed password checks axes recorded for `address` (its AccessAttempt rows)."""
    from axes.models import AccessAttempt
    from django.db.models import Sum

    total = AccessAttempt.objects.filter(ip_address=address).aggregate(
        n=Sum("failures_since_start")
    )["n"]
    return int(total or 0)


def clear_lockouts() -> int:
    from users_app.lockout import lockout_clear

    return lockout_clear()


# --- 4. the limits' own cost ---------------------------------------------------------------------


def run_limits(ctx: Context) -> dict:
    """POST /task and GET /result/<id> at 32 connections, limits on and off, alternating."""
    args = ctx.args
    off_args = argparse.Namespace(**vars(args))
    off_args.env = [*args.env, *(f"{k}={v}" for k, v in LIMITS_OFF.items())]
    off = Server(off_args, ctx.workdir, port=args.port + 1, tag="web_off")
    routes = {"post_task": ("POST /task", "submit"), "get_result": ("GET /result/<id>", "poll")}
    rounds: dict[str, dict[str, list]] = {r: {"on": [], "off": []} for r in routes}
    try:
        off.start(ctx.users["heavy"]["token"])
        ctx.say(f"limits off: a second server on port {off.port} ({', '.join(LIMITS_OFF)})")
        servers = {"on": (ctx.server, ctx.users["on"]), "off": (off, ctx.users["off"])}

        def targets(mode: str, user: dict) -> list[str]:
            return [user["token"]] if mode == "submit" else [user["token"], user["task"]]

        reset_state(ctx)
        for srv, user in servers.values():  # warm-up, not recorded
            for _route, (_label, mode) in routes.items():
                wrk_run(
                    srv.url, mode, targets(mode, user), connections=32, seconds=args.warm_seconds
                ).result()
        for rnd in range(args.rounds):
            for route, (label, mode) in routes.items():
                for which in ("on", "off"):
                    srv, user = servers[which]
                    reset_state(ctx)
                    with metered(srv.processes) as record:
                        res = wrk_run(
                            srv.url, mode, targets(mode, user), connections=32, seconds=args.seconds
                        ).result()
                    finish_record(record, res)
                    res.update(record)
                    res["cpu_ms_per_request"] = _per_request(res["server_cpu_s"], res["requests"])
                    rounds[route][which].append(res)
                    ctx.say(
                        f"limits {which:<3} round {rnd + 1} {label:<17} {res['rps']:>8.1f} req/s "
                        f"p99 {res['p99_ms']:>6.1f} ms  cpu {res['cpu_ms_per_request']} ms/req  "
                        f"non-2xx {res['requests'] - res['ok']}  other {record['other_cores']} cores"
                    )
    finally:
        off.stop()
    return {"routes": {r: label for r, (label, _m) in routes.items()}, "rounds": rounds}


def _per_request(cpu_s: float, requests: int) -> float | None:
    return round(1000 * cpu_s / requests, 3) if requests else None


# --- 1. tries before the first refusal ------------------------------------------------------------


def run_tries(ctx: Context) -> dict:
    """Basic on the API, then the admin's login, each from a cleared lockout.

    Every request carries a password never sent before, and the admin's login is not an API
    path: the gate can repeat nothing that matters here, so no wait for REPLAY_SECONDS.
    """
    url, victim = ctx.server.url, ctx.users["victim"]["name"]
    clear_lockouts()
    basic = tries_basic(url, victim, cap=ctx.args.basic_cap, tag=ctx.tag)
    basic["password_checks"] = failures_recorded()
    clear_lockouts()
    admin = tries_admin(url, victim, cap=ctx.args.admin_cap, tag=ctx.tag)
    admin["password_checks"] = failures_recorded()
    clear_lockouts()
    for name, res in (("basic", basic), ("admin", admin)):
        ctx.say(
            f"tries {name:<5}: {res['answered_before_refusal']} answered before the first 429 "
            f"(request {res['refused_at']}), {res['password_checks']} passwords checked, "
            f"{res['statuses']}, {res['seconds']} s"
        )
    return {"basic": basic, "admin": admin}


# --- 3. the normal poll ---------------------------------------------------------------------------


def run_normal_poll(ctx: Context) -> dict:
    """wrk polling GET /result/<id> on 32 connections as a user whose read rate is off."""
    reset_state(ctx)
    reader = ctx.users["reader"]
    with metered(ctx.server.processes) as record:
        res = wrk_run(
            ctx.server.url,
            "poll",
            [reader["token"], reader["task"]],
            connections=32,
            seconds=ctx.args.seconds,
        ).result()
    finish_record(record, res)
    res.update(record)
    res["cpu_ms_per_request"] = _per_request(res["server_cpu_s"], res["requests"])
    ctx.say(
        f"normal poll          {res['rps']:>8.1f} req/s  cpu {res['cpu_ms_per_request']} ms/req  "
        f"wrk {record['wrk_cores']} cores  other {record['other_cores']} cores"
    )
    return res


def warm_up(ctx: Context) -> None:
    """Every route of the users measured, unrecorded: imports, connections, remembered users."""
    reset_state(ctx)
    s = ctx.args.warm_seconds
    heavy, reader = ctx.users["heavy"], ctx.users["reader"]
    wrk_run(ctx.server.url, "submit", [heavy["token"]], connections=2, seconds=s).result()
    wrk_run(
        ctx.server.url, "poll", [reader["token"], reader["task"]], connections=32, seconds=s
    ).result()
    open_loop(ctx.server.url, ctx.users["quiet"]["token"], rate=ctx.args.quiet_rate, seconds=s)


# --- 2 and 3. each attacker alone, beside the quiet user, beside the heavy user ---------------


def run_attacker(ctx: Context, attacker: Attacker) -> dict:
    args, url = ctx.args, ctx.server.url
    S, lead = args.seconds, args.lead_seconds
    out: dict[str, Any] = {"label": attacker.label, "connections": attacker.connections}

    def attack(seconds: float) -> WrkRun:
        return wrk_run(
            url,
            attacker.mode,
            attacker_args(attacker, ctx.users, ctx.tag),
            connections=attacker.connections,
            seconds=seconds,
        )

    # Priming: until the door refuses (nearly) everything the attacker sends. From a cleared
    # lockout for the password guessers: how many passwords get checked by 8 connections at once.
    if attacker.refusal == "locked_out":
        clear_lockouts()
    reset_state(ctx)
    primes = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        res = attack(args.prime_seconds).result()
        primes.append({k: res[k] for k in ("requests", "statuses", "rps")})
        if res["refused"] and res["refused"] >= 0.9 * res["requests"]:
            break
    out["priming"] = {"runs": primes}
    if attacker.refusal == "locked_out":
        out["priming"]["password_checks"] = failures_recorded()
    ctx.say(f"{attacker.key}: primed {primes}")

    # The attacker alone: the CPU a refusal costs.
    reset_state(ctx)
    with metered(ctx.server.processes) as record:
        alone = attack(S).result()
    alone.update(finish_record(record, alone))
    alone["cpu_ms_per_request"] = _per_request(alone["server_cpu_s"], alone["requests"])
    out["alone"] = alone
    ctx.say(
        f"{attacker.key} alone       {alone['rps']:>8.1f} req/s  {alone['statuses']}  "
        f"cpu {alone['cpu_ms_per_request']} ms/req  wrk {alone['wrk_cores']} cores  "
        f"other {alone['other_cores']} cores"
    )

    # The quiet user, alone and beside the attacker.
    quiet = {}
    for beside in (False, True):
        reset_state(ctx)
        with metered(ctx.server.processes) as record:
            running = attack(lead + S + 0.5) if beside else None
            if running:
                time.sleep(lead)
            rows = open_loop(url, ctx.users["quiet"]["token"], rate=args.quiet_rate, seconds=S)
            attacker_res = running.result() if running else None
        finish_record(record, *([attacker_res] if attacker_res else []))
        summary = quiet_summary(rows, rate=args.quiet_rate, seconds=S)
        summary.update(record)
        if attacker_res:
            summary["attacker"] = attacker_res
        quiet["beside" if beside else "alone"] = summary
        ctx.say(
            f"{attacker.key} quiet {'beside' if beside else 'alone '} {summary['sent']} sent, "
            f"{summary['accepted']} accepted, p50 {summary['p50_ms']} p95 {summary['p95_ms']} "
            f"max {summary['max_ms']} ms  other {record['other_cores']} cores"
        )
    out["quiet"] = quiet

    # The heavy user (wrk, 2 connections, as fast as answered), alone and beside the attacker.
    heavy = {}
    for beside in (False, True):
        reset_state(ctx)
        with metered(ctx.server.processes) as record:
            running = attack(lead + S + 0.5) if beside else None
            if running:
                time.sleep(lead)
            res = wrk_run(
                url, "submit", [ctx.users["heavy"]["token"]], connections=2, seconds=S
            ).result()
            attacker_res = running.result() if running else None
        finish_record(record, res, *([attacker_res] if attacker_res else []))
        res.update(record)
        if attacker_res:
            res["attacker"] = attacker_res
        heavy["beside" if beside else "alone"] = res
        ctx.say(
            f"{attacker.key} heavy {'beside' if beside else 'alone '} {res['rps']:>8.1f} req/s "
            f"p99 {res['p99_ms']} ms non-2xx {res['requests'] - res['ok']}  "
            f"wrk {record['wrk_cores']} cores  other {record['other_cores']} cores"
        )
    out["heavy"] = heavy
    return out


def run_attackers(ctx: Context) -> dict:
    return {attacker.key: run_attacker(ctx, attacker) for attacker in ATTACKERS}
