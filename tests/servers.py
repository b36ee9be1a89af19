"""Real servers for tests: the Procfile's web line on the test database, and reading what it answers."""

import contextlib
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fairqueue.testing import free_port
from tests.conftest import ROOT, wait_for


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Return {(name, sorted labels): value} of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


class WebServer:
    """The Procfile's `web:` line (through honcho, as `make run` runs it), on the test database
    and prefix, with `workers` processes; with `entries`, other lines of the Procfile beside it
    (the worker, as `make run` starts it)."""

    def __init__(
        self, *, workers: int, env: dict[str, str], log: Path, entries: tuple[str, ...] = ("web",)
    ):
        self.port = int(os.environ.get("PQH_TEST_WEB_PORT") or free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "PQH_BIND": f"127.0.0.1:{self.port}",
            "PQH_WEB_WORKERS": str(workers),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        self.log = log
        self.entries = entries
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "WebServer":
        self.start()
        wait_for(self._answers, timeout=30, interval=0.1)
        return self

    def start(self) -> None:
        """Start it without waiting for it to answer."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "honcho", "-f", "Procfile", "-e", os.devnull, "start"]
            + list(self.entries),
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop it as Ctrl-C on `make run` does (the signal reaches every process of the group;
        honcho relays SIGTERM to what it started and waits for it, with no deadline of its own);
        return honcho's exit code (143: it was SIGTERMed)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # It did not stop: fail, but leave nothing of it running (honcho starts each
            # entry in a session of its own, named in its log by the pid it started).
            for pid in re.findall(r"started \(pid=(\d+)\)", self.log.read_text()):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid), 9)
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
            raise


def call(url: str, *, token: str = "", bearer: str = "", body: bytes | None = None) -> str:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if token:
        request.add_header("Authorization", f"Token {token}")
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()
