"""The fairness benchmark runs end to end in --quick mode and writes sane numbers.

A smoke test of `python -m bench.fairness`, not a measurement: sizes are tiny and the machine is
shared, so it checks only what must hold on any machine (every scenario present, utilisations in
range, a newcomer overtakes the hog under the policy and not under FIFO, weights tilt the
shares, S6 reports its shares of worker time under both charges, time charging giving the
short tasks more of it than counting tasks, and S7 gives the lone team more than the fifth it
would get without teams, and less after the other team's weight is raised).
"""

import pytest

from tests.benchrun import ROOT, run_bench

pytestmark = pytest.mark.integration


def test_quick_fairness_benchmark_reports_every_scenario(tmp_path, scratch_database):
    # A database of its own, dropped afterwards, so a full benchmark is not disturbed.
    # A guard against a hang, not a speed goal: the run takes about 110 s on this 2-core machine.
    rc, output, data = run_bench(
        "fairness",
        "--quick",
        "--database-url",
        scratch_database("bench_smoke"),
        out=tmp_path / "fairness.json",
        timeout=300,
    )
    assert rc == 0, output[-3000:]

    assert data["meta"]["elapsed_s"] > 0
    assert set(data["scenarios"]) == {"S1", "S2", "S3", "S4", "S5", "S6", "S7"}
    for name, scenario in data["scenarios"].items():
        assert scenario["runs"], name
        for run in scenario["runs"]:
            assert run["png"] and (ROOT / run["png"]).exists(), name  # relative, or absolute
            # --charge auto: the policy under time everywhere, S2, S6 and S7 under tasks too;
            # S6 and S7 have no FIFO run.
            both = name in ("S2", "S6", "S7")
            expected = {"policy-time"} | ({"policy-tasks"} if both else set())
            expected |= set() if name in ("S6", "S7") else {"fifo"}
            assert expected <= set(run["modes"]), (name, set(run["modes"]))
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
        fifo, policy = run["modes"]["fifo"], run["modes"]["policy-time"]
        assert policy["wait_d"]["newcomer"]["max"] < fifo["wait_d"]["newcomer"]["p50"]
        assert policy["hog_overtakes"] < fifo["hog_overtakes"]
        assert fifo["settings"]["PQH_FAIRNESS"] is False
        assert policy["settings"]["PQH_FAIRNESS"] is True
        assert policy["settings"]["PQH_CHARGE"] == "time"

    for run in data["scenarios"]["S2"]["runs"]:
        fifo = run["modes"]["fifo"]
        for charge in ("tasks", "time"):
            policy = run["modes"][f"policy-{charge}"]
            assert policy["settings"]["PQH_CHARGE"] == charge
            heavy = max(policy["weights"], key=policy["weights"].get)
            assert policy["share"][heavy] > fifo["share"][heavy], charge
            assert 0 < fifo["jain_share_per_weight"] <= 1
            assert policy["jain_share_per_weight"] > fifo["jain_share_per_weight"], charge

    (run,) = data["scenarios"]["S6"]["runs"]
    assert run["service_png"] and (ROOT / run["service_png"]).exists()
    s6 = {charge: run["modes"][f"policy-{charge}"] for charge in ("tasks", "time")}
    for charge, res in s6.items():
        assert res["settings"]["PQH_CHARGE"] == charge
        assert res["settings"]["PQH_TASK_CALLABLE"] == "bench.workload.sleep_for"
        assert res["weights"] == {"long": 1, "short": 2}
        assert set(res["levels"]) == {"0"}, charge  # both users on one level
        assert res["contention_s"] > 0, charge
        for field in ("share_work", "share"):
            assert set(res[field]) == {"long", "short"}, (charge, field)
            assert abs(sum(res[field].values()) - 1) < 0.01, (charge, field)
        assert 0 < res["jain_work_per_weight"] <= 1, charge
        assert 0 < res["jain_share_per_weight"] <= 1, charge
        assert res["max_gap_s"] >= 0 and res["pick_gap_s"] >= 0 and res["k_seen"] >= 0, charge
        assert (res["k_bound"] is None) == (charge == "tasks"), charge
        check = res["charge_check"]
        assert check["finished"] == res["tasks"], charge
    # Counting tasks hands the long tasks most of the workers; charging time gives the short
    # ones more (the sizes are too small for the 2:1 target itself).
    assert s6["time"]["share_work"]["short"] > s6["tasks"]["share_work"]["short"]
    # Time charging records the seconds each run spent in the work callable.
    assert s6["time"]["charge_check"]["run_seconds_missing"] == 0

    for run in data["scenarios"]["S5"]["runs"]:
        for res in run["modes"].values():
            assert 0 < res["latency_ms"]["p50"] < 1000

    (run,) = data["scenarios"]["S7"]["runs"]
    for charge in ("tasks", "time"):
        res = run["modes"][f"policy-{charge}"]
        assert set(res["levels"]) == {"0"}, charge  # all five users on one level
        before, after = res["phases"]["before"], res["phases"]["after"]
        assert sum(before["tasks"].values()) > 0 and sum(after["tasks"].values()) > 0, charge
        # Loose on a tiny shared run: without teams the lone user would get a fifth; with
        # equal teams it gets about half, then about a quarter once B weighs 3.
        assert before["share"]["a"] > 0.35, (charge, before)
        assert after["share"]["a"] < before["share"]["a"] - 0.1, (charge, before, after)
