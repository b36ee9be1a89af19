"""wrk against a server, and the CPU the server and its PostgreSQL backends spent per request.

`bench/wrk/api.lua` spreads the requests over the users' tokens (POST) or over queued tasks with
their owners' tokens (GET), and prints one `WRKJSON` line that `wrk` reads back.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

from bench.harness import ROOT

LUA = ROOT / "bench" / "wrk" / "api.lua"


def process_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each of these processes (all their threads), in seconds."""
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings: per process, so one that ended in between (a
    fill process's backend) takes nothing away, and one that started counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


# Set by meter_database(): the benchmark database's backend pids, read through the lock's
# connection.
_pg_backends = None


def pg_backends_of(conn):
    """A callable returning the pids of the other client backends on the benchmark database.

    Client backends only: an autovacuum worker (after a large fill) that ends during a
    measurement would take its CPU time out of the sum and make the difference negative.
    """

    def backends() -> list[int]:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
        return [row[0] for row in rows]

    return backends


def meter_database(conn) -> None:
    """Count, in every measurement's CPU, the benchmark database's client backends (via `conn`)."""
    global _pg_backends
    _pg_backends = pg_backends_of(conn)


def cpu_meter(pids_of, backends_of=None) -> dict[int, float]:
    """CPU seconds so far of a server's processes plus its database's backends (those of
    `backends_of()`, by default the benchmark database's)."""
    backends_of = backends_of or _pg_backends
    backends = backends_of() if backends_of else []
    return process_cpu_seconds(list(pids_of()) + backends)


def wrk(
    url: str,
    mode: str,
    targets: Path,
    *,
    connections: int,
    seconds: float,
    pids=None,
    backends=None,
    extra: str | None = None,
) -> dict:
    """Run wrk once; return requests/s, p50/p99 in ms, errors and, given a callable returning
    the server's pids, the CPU milliseconds per request it and its PostgreSQL backends spent
    (`backends`: a callable giving those backends' pids, if not the benchmark database's)."""
    threads = min(2, connections)
    cpu_before = cpu_meter(pids, backends) if pids else None
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    cmd += ["-s", str(LUA), url, "--", mode, str(targets), *([extra] if extra else [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        # wrk itself hung: the server stopped answering (the original does at times, see
        # docs/performance.md). Recorded as a stalled round, not taken for a measurement.
        return {
            "rps": 0.0,
            "p50_ms": 0.0,
            "p90_ms": 0.0,
            "p99_ms": 0.0,
            "max_ms": 0.0,
            "requests": 0,
            "non_2xx": 0,
            "socket_errors": 0,
            "seconds": seconds,
            "cpu_ms_per_request": None,
            "stalled": True,
        }
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-1500:]}{proc.stderr}")
    # Requests wrk gave up at the deadline may still be in the server's queue: let it drain
    # before the next step changes the data under it.
    time.sleep(min(0.5, seconds / 4))
    cpu = cpu_spent(cpu_before, cpu_meter(pids, backends)) if pids else None
    raw = json.loads(line[len("WRKJSON ") :])
    seconds_run = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "requests": raw["requests"],
        "non_2xx": raw["status"],
        "socket_errors": errors,
        "seconds": round(seconds_run, 2),
        "cpu_ms_per_request": round(1000 * cpu / raw["requests"], 3)
        if cpu is not None and raw["requests"]
        else None,
    }
