"""The fairness benchmark runs end to end in --quick mode and writes sane numbers.

A smoke test of bench/fairness.py, not a measurement: sizes are tiny and the machine is shared,
so it checks only what must hold on any machine (every scenario present, utilisations in range,
a newcomer overtakes the hog under the policy and not under FIFO, weights tilt the shares).
"""

import pytest

from .benchrun import ROOT, run_bench

pytestmark = pytest.mark.integration


def test_quick_fairness_benchmark_reports_every_scenario(tmp_path, scratch_database):
    # A database of its own, dropped afterwards, so a full benchmark is not disturbed.
    # A guard against a hang, not a speed goal: the run takes about 35 s on a quiet machine.
    rc, output, data = run_bench(
        "fairness.py",
        "--quick",
        "--database-url",
        scratch_database("bench_smoke"),
        out=tmp_path / "fairness.json",
        timeout=240,
    )
    assert rc == 0, output[-3000:]

    assert data["meta"]["elapsed_s"] > 0
    assert set(data["scenarios"]) == {"S1", "S2", "S3", "S4", "S5"}
    for name, scenario in data["scenarios"].items():
        assert scenario["runs"], name
        for run in scenario["runs"]:
            assert run["png"] and (ROOT / run["png"]).exists(), name  # relative, or absolute
            assert {"fifo", "policy"} <= set(run["modes"]), name
            for mode, res in run["modes"].items():
                where = f"{name} W={run['W']} {mode}"
                assert "error" not in res, (where, res.get("error"))
                assert not res["timed_out"], where
                assert res["finished"] == res["tasks"] > 0, where
                if name != "S5":  # an idle service has nothing queued behind a busy slot
                    assert 0 < res["utilisation"] <= 1.05, where
                for stats in res["wait_d"].values():
                    assert 0 <= stats["p50"] <= stats["p99"] <= stats["max"], where

    for run in data["scenarios"]["S1"]["runs"]:
        fifo, policy = run["modes"]["fifo"], run["modes"]["policy"]
        assert policy["wait_d"]["newcomer"]["max"] < fifo["wait_d"]["newcomer"]["p50"]
        assert policy["hog_overtakes"] < fifo["hog_overtakes"]
        assert fifo["settings"]["PQH_FAIRNESS"] is False
        assert policy["settings"]["PQH_FAIRNESS"] is True

    for run in data["scenarios"]["S2"]["runs"]:
        fifo, policy = run["modes"]["fifo"], run["modes"]["policy"]
        heavy = max(policy["weights"], key=policy["weights"].get)
        assert policy["share"][heavy] > fifo["share"][heavy]
        assert 0 < fifo["jain_share_per_weight"] <= 1
        assert policy["jain_share_per_weight"] > fifo["jain_share_per_weight"]

    for run in data["scenarios"]["S5"]["runs"]:
        for res in run["modes"].values():
            assert 0 < res["latency_ms"]["p50"] < 1000
