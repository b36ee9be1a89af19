"""The reliability benchmark, small: load over HTTP through three faults, and nothing is lost.

`python -m bench.reliability --quick` runs the real stack (web server as the Procfile runs it,
two worker hosts, a private Redis, PostgreSQL through a proxy) against a database of its own; a
worker host is killed, PostgreSQL is cut for 3 s and Redis restarts empty, each in the middle of
the submissions. Its own checks decide; this test reads them.
"""

import pytest

from fairqueue.testing import free_port
from tests.benchrun import run_bench

pytestmark = pytest.mark.integration


def test_quick_reliability_benchmark_loses_nothing(tmp_path, scratch_database):
    rc, output, data = run_bench(
        "reliability",
        "--quick",
        "--database-url",
        scratch_database("reliability"),
        "--port",
        str(free_port()),
        out=tmp_path / "reliability.json",
        timeout=240,
    )
    assert data is not None, output[-3000:]
    failed = {name: c["detail"] for name, c in data["checks"].items() if not c["ok"]}
    assert not failed, output[-3000:]
    assert rc == 0
    assert [f["fault"] for f in data["faults"]] == ["kill", "db", "redis"]
    outcome = data["outcome"]
    assert outcome["accepted"] >= 200 and outcome["not_final"] == 0
    assert outcome["finished"] + outcome["failed"] + outcome["cancelled"] == outcome["accepted"]
    assert outcome["failed"] >= 1 and outcome["cancelled"] >= 1  # both paths were exercised
    assert data["load"]["requests"] > data["config"]["submissions"]
