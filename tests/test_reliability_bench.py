"""The reliability benchmark, small: load over HTTP through three faults, and nothing is lost.

bench/reliability.py --quick runs the real stack (web server as the Procfile runs it, two
worker hosts, a private Redis, PostgreSQL through a proxy) against a database of its own; a
worker host is killed, PostgreSQL is cut for 3 s and Redis restarts empty, each in the middle
of the submissions. Its own checks decide; this test reads them.
"""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .faults import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_quick_reliability_benchmark_loses_nothing(tmp_path, scratch_database):
    out = tmp_path / "reliability.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "reliability.py"),
            "--quick",
            "--out",
            str(out),
            "--database-url",
            scratch_database("reliability"),
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the benchmark stops what it started
        output, _ = proc.communicate(timeout=60)
        pytest.fail(f"the quick reliability benchmark did not end:\n{output[-3000:]}")
    assert out.exists(), output[-3000:]
    data = json.loads(out.read_text())
    failed = {name: c["detail"] for name, c in data["checks"].items() if not c["ok"]}
    assert not failed, output[-3000:]
    assert proc.returncode == 0
    assert [f["fault"] for f in data["faults"]] == ["kill", "db", "redis"]
    outcome = data["outcome"]
    assert outcome["accepted"] >= 200 and outcome["not_final"] == 0
    assert outcome["finished"] + outcome["failed"] + outcome["cancelled"] == outcome["accepted"]
    assert outcome["failed"] >= 1 and outcome["cancelled"] >= 1  # both paths were exercised
    assert data["load"]["requests"] > data["config"]["submissions"]
