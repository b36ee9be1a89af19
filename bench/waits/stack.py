"""pqh's processes as the Procfile starts them (web, waits, one Celery worker), each through
honcho in a process group of its own, on the benchmark's database and a private redis-server.

Each is a `bench.api.server.Server` (its process walk, resident memory and stop) started from
its own Procfile entry; `threads()` and `cpu_seconds()` read /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

from bench.api.driver import process_cpu_seconds
from bench.api.scenarios import BENCH_SECRET
from bench.api.server import Server, http_get
from bench.harness import ROOT, clean_environ, start_process, tail


def procfile_entry(name: str) -> str:
    """The Procfile's command for `name`."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.partition(":")[2].strip()
    raise SystemExit(f"the Procfile has no {name}: entry")


def stack_env(args: argparse.Namespace) -> dict[str, str]:
    """The settings of every process of the run (and of the benchmark's own, Django's)."""
    return {
        "DJANGO_SETTINGS_MODULE": "pqh_site.settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PQH_REDIS_PREFIX": args.prefix,
        "PQH_SECRET_KEY": BENCH_SECRET,
        "PQH_BIND": f"127.0.0.1:{args.port}",
        "PQH_WAIT_BIND": f"127.0.0.1:{args.port + 1}",
        "PQH_WAIT_URL": f"http://127.0.0.1:{args.port + 1}",
        # Submissions are never refused by a cap (a refusal is cheaper, and not what is measured).
        "PQH_MAX_QUEUED": "100000000",
        "PQH_USER_MAX_ACTIVE": "100000000",
        # The work reads each task's length from its input (0 s in the latency phase, 10 s in
        # the client comparison): bench.workload.sleep_for.
        "PQH_TASK_CALLABLE": "bench.workload.sleep_for",
        "PQH_TASK_SECONDS": "0",
    }


class Entry(Server):
    """One Procfile entry run through honcho: `entry` is web, waits or worker."""

    def __init__(self, args: argparse.Namespace, workdir: Path, entry: str):
        super().__init__(args, workdir, command=procfile_entry(entry), tag=entry)
        self.entry = entry

    def env(self) -> dict[str, str]:
        env = clean_environ()
        env.update(stack_env(self.args), PYTHONUNBUFFERED="1")
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        for item in self.args.env or []:
            name, _, value = item.partition("=")
            env[name] = value
        return env

    def launch(self) -> None:
        procfile = self.workdir / f"Procfile.{self.entry}"
        procfile.write_text(f"{self.entry}: {self.command}\n")
        honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or "honcho"
        self.proc = start_process(
            [honcho, "-f", str(procfile), "-d", str(ROOT), "-e", os.devnull]
            + ["start", "--no-prefix", "--no-colour", self.entry],
            env=self.env(),
            log=self.log,
        )

    def ready(self, check, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.entry} exited:\n{tail(self.log)}")
            with contextlib.suppress(OSError):
                if check():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.entry}: {what} within {timeout:.0f} s:\n{tail(self.log)}")

    def threads(self) -> int:
        """Threads of every process of the entry (honcho, the server and its workers)."""
        total = 0
        for pid in self.processes():
            with contextlib.suppress(OSError):
                total += len(os.listdir(f"/proc/{pid}/task"))
        return total

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(self.processes()).values())


class Stack:
    """web, waits and worker; started with `start`, stopped with `stop` (also on errors)."""

    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.web = Entry(args, workdir, "web")
        self.waits = Entry(args, workdir, "waits")
        self.worker = Entry(args, workdir, "worker")
        self.wait_url = f"http://127.0.0.1:{args.port + 1}"

    def start_servers(self, probe_token: str) -> None:
        self.web.launch()
        self.waits.launch()
        self.web.ready(
            lambda: http_get(self.web.url, "/api/usage/", token=probe_token)[0] == 200,
            "the web server did not answer",
        )
        self.waits.ready(
            lambda: http_get(self.wait_url, "/healthz")[0] == 200,
            "the wait server did not answer",
        )

    def start_worker(self) -> None:
        self.worker.launch()
        # The whole log: on a fast machine the worker's task lines push "ready." out of a tail
        # before the first look.
        self.worker.ready(
            lambda: "ready." in tail(self.worker.log, None), "the worker was not ready"
        )

    def stop_worker(self) -> None:
        self.worker.stop()
        self.worker.proc = None

    def stop(self) -> None:
        for entry in (self.worker, self.waits, self.web):
            entry.stop()
