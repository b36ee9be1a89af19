"""docker-compose.yml stays true to the Procfile: every pqh service runs a Procfile entry, and the
proxy sends waits and streams to the wait server (Debian's docker-compose validates the file)."""

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT


def procfile_entries() -> set[str]:
    return {line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines() if line}


def test_every_pqh_service_runs_a_procfile_entry_and_every_server_entry_is_a_service():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    ran = set()
    for service in services.values():
        command = service.get("command") or []
        if command[:2] == ["honcho", "start"]:
            ran.add(command[-1])
    assert ran <= procfile_entries()
    assert {"web", "waits", "worker", "beat", "flower"} <= ran


def test_the_proxy_routes_streams_and_waits_to_the_wait_server():
    caddy = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(r"@events path_regexp \^/api/tasks/\[\^/\]\+/events\$", caddy)
    assert "query wait=*" in caddy and "Prefer" in caddy
    # Only a task's poll and detail wait: a list with ?wait stays on the web server.
    assert caddy.count("path_regexp ^/(result/[^/]+/?|api/tasks/[^/]+/)$") == 2
    assert caddy.count("reverse_proxy waits:8001") == 3 and "reverse_proxy web:8000" in caddy


@pytest.mark.skipif(
    not shutil.which("docker-compose"), reason="Debian's docker-compose is not installed"
)
def test_docker_compose_validates_the_file():
    env = {
        "PQH_SECRET_KEY": "x",
        "POSTGRES_PASSWORD": "y",
        "FLOWER_BASIC_AUTH": "a:b",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        ["docker-compose", "config", "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
