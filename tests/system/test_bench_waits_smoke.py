"""The waiting benchmark runs end to end in --quick mode and writes sane numbers.

A smoke test of `python -m bench.waits`, not a measurement: 50 long polls and 20 streams on a
shared machine, so it checks only what must hold anywhere (every waiter held and answered with
its task's end, the memory, threads and CPU read, wrk's routes answered without errors, both
clients of the comparison got their results, and nothing is left listening).
"""

import shutil
import socket

import pytest
from django.conf import settings

from fairqueue.testing import free_port
from tests.benchrun import run_bench

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_quick_waits_benchmark_holds_and_answers_every_waiter(tmp_path, scratch_database):
    port = free_port()
    rc, output, data = run_bench(
        "waits",
        "--quick",
        "--database-url",
        scratch_database("bench_waits_smoke"),
        "--prefix",
        f"{settings.PQH_REDIS_PREFIX}_benchwaits",
        "--port",
        str(port),
        out=tmp_path / "waits.json",
        timeout=300,
    )
    assert rc == 0, output[-3000:]
    held = data["held"]
    assert held["polls_registered"] >= 50 and held["all_registered"] >= 70
    for kind, clients in (("poll", 50), ("stream", 20)):
        ends = data["ends"][kind]
        assert ends["answered"] == clients and ends["errors"] == 0, ends
        latency = ends["from_finished_at_ms"]
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    memory = data["memory"]
    assert memory["rss_all_mib"] > memory["rss_idle_mib"] > 0
    assert memory["threads_idle"] > 0
    assert data["idle"]["cores"] >= 0
    for phase in ("none_before", "held", "none_after"):
        for route in ("post_task", "get_result"):
            cell = data["sync"][phase][route]
            assert cell["requests"] > 0 and cell["non_2xx"] == 0 and cell["socket_errors"] == 0
    summary = data["clients"]["summary"]
    assert summary["long_poll"]["requests_per_task"] >= 1
    assert summary["poll_each_second"]["requests_per_task"] >= 1
    for mode in summary.values():
        assert mode["lateness_ms"]["n"] == mode["tasks"] > 0
    # Every process the benchmark started is gone: neither port answers.
    for p in (port, port + 1):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", p)) != 0
