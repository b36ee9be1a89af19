"""The shares-sweep benchmark runs and writes sane numbers (tiny sizes: a smoke test, not a
measurement)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_the_shares_sweep_benchmark_reads_both_histories(tmp_path):
    out = tmp_path / "shares_sweep.json"
    proc = subprocess.run(
        [sys.executable, "bench/shares_sweep.py", "--tasks", "300", "--users", "12", "--teams",
         "3", "--repeat", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    plain, teams = data["results"]
    assert (plain["teams"], plain["team_rows"], teams["team_rows"]) == (0, 0, 3)
    for row in (plain, teams):
        assert row["cpu_seconds"] > 0 and row["users"] == 12
        assert row["entitled_sum"] == 1.0  # both shares add up to the whole service
    assert "no teams" in proc.stdout and "3 teams" in proc.stdout
