"""The worker-path benchmark runs end to end in --quick mode and writes sane numbers.

A smoke test of `python -m bench.workers`, not a measurement: 30 zero-length tasks each for pqh
and the peer on a shared machine, so it checks only what must hold anywhere (every task of
every system finished and timed, the figures consistent with each other).
"""

import pytest

from tests.benchrun import run_bench

pytestmark = pytest.mark.integration


def test_quick_workers_benchmark_times_pqh_and_the_peer(tmp_path, scratch_database):
    rc, output, data = run_bench(
        "workers",
        "--quick",
        "--database-url",
        scratch_database("bench_workers_pqh"),
        "--peer-database-url",
        scratch_database("bench_workers_peer"),
        out=tmp_path / "workers.json",
        timeout=240,
    )
    assert rc == 0, output[-3000:]
    assert {run["system"] for run in data["runs"]} == {"pqh", "peer"}
    for run in data["runs"]:
        assert run["tasks"] == 30, run
        assert run["tasks_per_s"] > 0 and run["worker_cpu_ms_per_task"] > 0, run
        # Two slots: a slot's ms per task is twice the span per task.
        per_task = run["span_s"] / (run["tasks"] - 1) * 1000
        assert run["slot_ms_per_task"] == pytest.approx(2 * per_task, rel=0.01), run
    pqh = next(row for row in data["summary"] if row["system"] == "pqh")
    assert pqh["vs_peer"] > 0
