"""The API benchmark runs end to end in --quick mode and writes sane numbers.

A smoke test of `python -m bench.api`, not a measurement: tiny sizes on a shared machine, so it
checks only what must hold anywhere (every route answered without errors, the counts probe and
the depth table present, memory figures positive, the peer of bench/peer/ measured beside pqh
on its two routes).
"""

import shutil

import pytest
from django.conf import settings

from fairqueue.testing import free_port
from tests.benchrun import run_bench

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_quick_api_benchmark_drives_every_route(tmp_path, scratch_database):
    rc, output, data = run_bench(
        "api",
        "--quick",
        "--database-url",
        scratch_database("bench_api_smoke"),
        "--peer-database-url",
        scratch_database("bench_api_peer_smoke"),
        "--prefix",
        f"{settings.PQH_REDIS_PREFIX}_benchapi",
        "--port",
        str(free_port()),
        "--cpu",
        "20",
        "--cpu-rounds",
        "1",
        out=tmp_path / "api.json",
        timeout=120,
    )
    assert rc == 0, output[-3000:]

    routes = {"POST /task", "POST /api/tasks/", "GET /result/<id>", "GET /api/tasks/<id>/"}
    assert {cell["route"] for cell in data["table"].values()} == routes
    for cell in data["table"].values():
        pqh = cell["pqh"]
        assert pqh["rps"] > 0 and pqh["non_2xx"] == 0 and pqh["socket_errors"] == 0, cell
        assert 0 < pqh["p50_ms"] <= pqh["p99_ms"], cell
    # The peer: the service a Django team writes without pqh, on POST /task and the poll only.
    peer_cells = {cell["route"]: cell for cell in data["table"].values() if "peer" in cell}
    assert set(peer_cells) == {"POST /task", "GET /result/<id>"}
    for cell in peer_cells.values():
        peer = cell["peer"]
        assert peer["rps"] > 0 and peer["non_2xx"] == 0 and peer["socket_errors"] == 0, cell
        assert peer["cpu_ms_per_request"] > 0 and cell["vs_peer"]["pqh"]["rps"] > 0, cell
    assert data["meta"]["peer"]["web"].endswith("bench.peer.proj.wsgi:application")
    # --cpu: each request path in process, pqh's and the peer's, every answer a success.
    assert set(data["cpu"]) == {"post_task", "get_result"}
    for route, entry in data["cpu"].items():
        for name in ("pqh", "peer"):
            assert entry[name]["ms_per_request"] > 0, (route, name)
            statuses = entry[name]["rounds"][0]["statuses"]
            assert set(statuses) == ({"202"} if route == "post_task" else {"200"}), statuses
    for route, counts in data["counts"].items():
        assert counts["ok"] == counts["requests"] > 0, route
        # Every route reads or writes the task row; the credentials are remembered.
        assert counts["sql_queries"] >= 1 and counts["redis_round_trips"] >= 1, route
    assert {d["route"] for d in data["depth"].values()} == routes
    for row in data["depth"].values():
        assert row["shallow"]["rps"] > 0 and row["deep"]["rps"] > 0, row
    memory = data["memory"]
    assert 50 < memory["bytes_per_queued_task"] < 5000
    assert 10 < memory["window"]["bytes_per_entry"] < 1000
