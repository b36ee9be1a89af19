"""The queue-cost benchmark runs end to end in --quick mode and writes sane numbers.

A smoke test of `python -m bench.queue_cost`, not a measurement: 1,000 backlogged users on a
private redis-server, 50 calls of each kind. It checks what must hold anywhere: every shape
filled as asked, Redis counted exactly the calls made, and teams cost memory.
"""

import pytest

from tests.benchrun import run_bench

pytestmark = pytest.mark.integration


def test_quick_queue_cost_benchmark_times_every_call_kind(tmp_path):
    rc, output, data = run_bench("queue_cost", "--quick", out=tmp_path / "qc.json", timeout=180)
    assert rc == 0, output[-3000:]
    shapes = data["shapes"]
    assert set(shapes) == {"small", "no-teams", "teams"}
    assert shapes["teams"]["teams"] == 100 and shapes["no-teams"]["teams"] == 0
    for name, shape in shapes.items():
        users = 0 if name == "small" else 1000
        assert shape["backlogged_users"] == users, name
        # 2 tasks per backlogged user, 5 per foreground user, all waiting before the calls.
        assert shape["waiting_tasks"] == 2 * users + 50, name
        for kind in ("enqueue_bare", "enqueue", "position", "pick"):
            assert shape[kind]["calls"] == 50, (name, kind)  # one script call each, no more
            assert shape[kind]["redis_usec_per_call"] > 0, (name, kind)
            assert shape[kind]["client_usec_p50"] > 0, (name, kind)
    assert shapes["no-teams"]["bytes_per_user"] > 0
    assert shapes["teams"]["bytes_per_user"] > shapes["no-teams"]["bytes_per_user"]
    assert data["bytes_per_team_task"] > 0
    # Enqueues in alternate chunks of 10: each chunk kept with the B it started at.
    series = shapes["teams"]["enqueue"]["by_b"]
    assert len(series) == 5 and [b for b, _us in series] == sorted(b for b, _us in series)
