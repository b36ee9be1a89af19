"""The web server as the Procfile runs it, through honcho, and plain HTTP calls to it."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import ROOT, clean_environ, start_process, tail

from .scenarios import server_settings


def procfile_web() -> str:
    """The Procfile's `web:` command."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.partition(":")[2].strip()
    raise SystemExit("the Procfile has no web: entry")


class Server:
    """The web server as the Procfile runs it, through honcho, in a process group of its own."""

    def __init__(
        self,
        args: argparse.Namespace,
        workdir: Path,
        *,
        command: str | None = None,
        port: int | None = None,
        tag: str = "web",
        env: dict[str, str] | None = None,
        probe: str = "/api/usage/",
    ):
        self.args = args
        self.workdir = workdir
        self.command = command or args.web or procfile_web()
        self.port = port or args.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{tag}.log"
        self.tag = tag
        self.extra_env = env or {}  # over the benchmark's settings (the peer's are its own)
        self.probe = probe  # answers 200 with a token once the server is up
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = clean_environ()
        env.update(server_settings(self.args))
        env.update(PQH_BIND=f"127.0.0.1:{self.port}", PYTHONUNBUFFERED="1")
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        if self.extra_env:
            env.update(self.extra_env)
            return env
        for item in self.args.env or []:
            name, _, value = item.partition("=")
            env[name] = value
        return env

    def start(self, probe_token: str) -> None:
        procfile = self.workdir / f"Procfile.{self.tag}"
        procfile.write_text(f"web: {self.command}\n")
        honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or "honcho"
        self.proc = start_process(
            [honcho, "-f", str(procfile), "-d", str(ROOT), "-e", os.devnull]
            + ["start", "--no-prefix", "--no-colour", "web"],
            env=self.env(),
            log=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the web server exited:\n{tail(self.log)}")
            with contextlib.suppress(OSError):
                if http_get(self.url, self.probe, token=probe_token)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the web server did not answer within 60 s:\n{tail(self.log)}")

    def processes(self) -> list[int]:
        """The server's process and its descendants (honcho starts the server in a session of
        its own, so the process group alone would miss it)."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                    children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def rss_bytes(self) -> int:
        """Resident memory of the server's processes (honcho, gunicorn's arbiter and workers)."""
        total = 0
        for pid in self.processes():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                total += int(stat[stat.rindex(")") + 2 :].split()[21]) * os.sysconf("SC_PAGE_SIZE")
        return total

    def stop(self) -> None:
        """SIGTERM honcho (it stops what it started), then SIGKILL whatever is left."""
        if self.proc is None:
            return
        started = {pid: _start_time(pid) for pid in self.processes()}
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        for pid, start in started.items():
            # Only a process that is still the one we started (pids are reused).
            if start is not None and _start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), None if it is gone: pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def http_get(base: str, path: str, *, token: str | None = None) -> tuple[int, bytes]:
    """GET `path` on `base`, with a token if given; return the status and the body."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Token {token}"} if token else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_post(base: str, path: str, body: dict) -> tuple[int, bytes]:
    """POST `body` as JSON to `path` on `base`; return the status and the body."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
