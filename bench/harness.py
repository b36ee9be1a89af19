"""What the benchmarks under bench/ share: the processes they start, waiting, logs, the commit.

Each benchmark is a package run from the project root as `python -m bench.NAME`, and imports
this module as `bench.harness`. Its statistics are fairqueue.stats's (`percentile` is re-exported
here), summarised by `percentiles`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The project's one percentile (linear interpolation, as numpy's and PostgreSQL's
# percentile_cont), also importable from here, as it always was.
from fairqueue.stats import percentile as percentile

ROOT = Path(__file__).resolve().parent.parent

# Variables a benchmark sets or clears for what it starts, so nothing leaks in from the caller's
# environment (a shell with `make run`'s exports, or pytest's PQH_TEST_*).
# A user's request rate (Profile.submit_rate, read_rate) that no benchmark's load reaches: its
# requests are still counted by the door's buckets, as a real user's are.
HIGH_RATE = "1000000/s"
CLEARED_ENV_PREFIXES = ("PQH_", "CELERY_")
CLEARED_ENV = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")


def clean_environ() -> dict[str, str]:
    """This process's environment without any pqh, Celery or Django setting."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in CLEARED_ENV and not k.startswith(CLEARED_ENV_PREFIXES)
    }


def die_with_parent() -> None:
    """In a started process: get SIGTERM when the benchmark dies (Linux PR_SET_PDEATHSIG).

    The signal comes when the *thread* that started the process ends, so start long-lived
    processes from a thread that lives as long as the benchmark.
    """
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def start_process(cmd: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `cmd` in its own process group, output appended to `log`."""
    with log.open("a") as out:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def stop_group(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group (a warm shutdown), then SIGKILL what is left of it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    # The group may outlive its leader (pool processes): make sure it is gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


class Processes:
    """Every process a benchmark started, by name, each in its own process group."""

    def __init__(self, logdir: Path | None = None) -> None:
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(
        self, name: str, cmd: list[str], *, env: dict[str, str], log: Path | None = None
    ) -> subprocess.Popen:
        """Start `cmd` as `name`; its output goes to `log` (default: LOGDIR/NAME.log)."""
        if log is None:
            if self.logdir is None:
                raise ValueError(f"{name}: no log file and no log folder")
            log = self.logdir / f"{name}.log"
        proc = start_process(cmd, env=env, log=log)
        self.procs[name] = proc
        self.logs[name] = log
        return proc

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL the whole group at once, as when a host dies."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """Stop `name` (warm, then SIGKILL), if it is still one of ours."""
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_group(proc, timeout)

    def stop_all(self) -> None:
        """Stop everything, the last started first."""
        for name in reversed(list(self.procs)):
            self.stop(name)

    def log(self, name: str, n: int | None = None) -> str:
        """The output of `name` so far (its last `n` characters)."""
        path = self.logs.get(name)
        return tail(path, n) if path is not None else ""


def tail(path: Path, n: int | None = 3000) -> str:
    """The last `n` characters of a file (all of it for None); "" if it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text if n is None else text[-n:]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy; RuntimeError("WHAT within T s")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"{what} within {timeout:.0f} s")


def git_describe(paths: tuple[str, ...] = ("tasks_app", "pqh_site", "users_app")) -> str | None:
    """The commit measured, with "-dirty" if `paths` have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *paths],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return head + ("-dirty" if dirty else "")


def command_line() -> str:
    """How this process was started, as typed: `python -m bench.fairness --quick`."""
    argv0 = Path(sys.argv[0])
    start = [sys.argv[0]]
    if argv0.name == "__main__.py":  # python -m PACKAGE
        with contextlib.suppress(ValueError):
            start = ["-m", ".".join(argv0.resolve().parent.relative_to(ROOT).parts)]
    return " ".join([Path(sys.executable).name, *start, *sys.argv[1:]])


def run_meta(paths: tuple[str, ...] = ("tasks_app", "pqh_site", "users_app")) -> dict[str, Any]:
    """What every result file says of its run: the command, when, where, and the commit."""
    return {
        "command": command_line(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "git": git_describe(paths) or "unknown",
    }


def relative(path: Path) -> Path:
    """`path` relative to the project root, where it is inside it."""
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def percentiles(values: list[float], scale: float = 1.0) -> dict[str, Any]:
    """n, p50, p99, max and mean of `values` divided by `scale`, rounded to 3 decimals.

    All None (n 0) when there are no values. The percentiles are fairqueue.stats.percentile's.
    """
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None, "mean": None}
    scaled = [v / scale for v in values]
    return {
        "n": len(values),
        "p50": round(percentile(scaled, 50), 3),
        "p99": round(percentile(scaled, 99), 3),
        "max": round(max(scaled), 3),
        "mean": round(sum(scaled) / len(scaled), 3),
    }
