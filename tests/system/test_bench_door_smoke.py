"""The door benchmark runs end to end in --quick mode and writes every figure.

A smoke test of `python -m bench.door`, not a measurement: phases of 2 s on a shared machine, so
it checks only what must hold anywhere: every figure is in the JSON, the tries before the first
refusal are at most 10 over basic and at the admin's login, the quiet user got answers, the
attackers were refused, and the servers it started are gone.
"""

import shutil
import socket

import pytest
from django.conf import settings

from bench.door.analysis import ATTACKER_FIGURES
from fairqueue.testing import free_port
from tests.benchrun import run_bench

pytestmark = pytest.mark.integration

ATTACKERS = ("A_guess", "A_guesses", "B_poll")
FIGURES = [
    "tries_basic",
    "tries_basic_password_checks",
    "tries_admin",
    "tries_admin_password_checks",
    "normal_poll_rps",
    "normal_poll_cpu_ms",
    *(f"{key}.{name}" for key in ATTACKERS for name in ATTACKER_FIGURES),
    "normal_poll_sql",
    *(
        f"limits.{route}.{name}"
        for route in ("post_task", "get_result")
        for name in ("on_rps", "on_cpu_ms", "off_rps", "off_cpu_ms", "rps_on_over_off")
    ),
]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _two_free_ports() -> int:
    """A free port whose next one is free too (the limits-off server listens there)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_quick_door_benchmark_writes_every_figure(tmp_path, scratch_database):
    port = _two_free_ports()
    rc, output, data = run_bench(
        "door",
        "--quick",
        "--database-url",
        scratch_database("bench_door_smoke"),
        "--prefix",
        f"{settings.PQH_REDIS_PREFIX}_benchdoor",
        "--port",
        str(port),
        out=tmp_path / "door.json",
        timeout=300,
    )
    assert rc == 0, output[-3000:]
    assert "error" not in data, data.get("error")

    flat = data["figures"]["flat"]
    missing = [name for name in FIGURES if flat.get(name) is None]
    assert missing == [], missing

    for name in ("basic", "admin"):
        tries = data["tries"][name]
        assert tries["refused_at"] is not None, tries  # refused within the cap
        assert tries["answered_before_refusal"] <= 10, tries
        assert 1 <= tries["password_checks"] <= 10, tries
    assert flat["tries_basic"] <= 10 and flat["tries_admin"] <= 10

    for key in ATTACKERS:
        attacker = data["attackers"][key]
        assert attacker["alone"]["refused"] > 0, attacker["alone"]
        for phase in ("alone", "beside"):
            quiet = attacker["quiet"][phase]
            assert quiet["sent"] > 0 and quiet["accepted"] > 0, quiet
            assert attacker["heavy"][phase]["ok"] > 0, attacker["heavy"][phase]
    # The gate answers the repeated refusals of A before Django: no SQL, no log line. B's are
    # repeated only until its bucket has room again (every 50 ms): nearly all of them.
    probe = data["refusal_probe"]["A_guess"]
    assert probe["statuses"] == {"429": probe["requests"]}, probe
    assert probe["answered_by_gate"] == 1.0 and probe["sql_per_request"] == 0, probe
    probe = data["refusal_probe"]["B_poll"]
    assert probe["statuses"].get("429", 0) >= probe["requests"] - 2, probe
    assert probe["answered_by_gate"] >= 0.9, probe
    probe = data["refusal_probe"]["A_guesses"]  # a new password each: Django answers every one
    assert probe["statuses"] == {"429": probe["requests"]}, probe
    assert {check["figure"] for check in data["checks"]} >= {
        "tries before the first refusal, basic",
        "tries before the first refusal, admin",
    }
    assert data["meta"]["load_before"] and data["meta"]["load_after"]
    # Every server it started is gone.
    assert not _listening(port) and not _listening(port + 1)
