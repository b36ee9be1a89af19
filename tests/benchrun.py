"""Running a benchmark under bench/ from a test: a smoke run, not a measurement."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(name: str, *args: str, out: Path, timeout: float) -> tuple[int, str, dict | None]:
    """Run `python -m bench.NAME --out OUT ARGS…`; return its exit code, output and JSON.

    `timeout` guards against a hang (it is no speed goal): past it the benchmark gets SIGTERM,
    which makes it stop every process it started, and the test fails with its output.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}", "--out", str(out), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        pytest.fail(f"bench.{name} did not end within {timeout:.0f} s:\n{output[-3000:]}")
    data = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, output, data
