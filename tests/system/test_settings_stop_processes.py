"""A setting that cannot work stops every process at start with one line: commands, the web server, Celery."""

import os
import signal
import subprocess
import sys

import pytest

from fairqueue.testing import free_port
from pqh_site.checks import TAG
from tests.conftest import ROOT
from tests.unit.test_settings_checks import BAD, E001_LINE, NOWHERE  # the same cases


def process_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PQH_", "DJANGO_"))}
    env.update(NOWHERE)
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    env["PQH_BEAT_SCHEDULE_FILE"] = str(tmp_path / "beat-schedule")
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{args} did not stop:\n{out[-2000:]}\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} entry in the Procfile")


@pytest.mark.parametrize(
    "args",
    [
        [sys.executable, "manage.py", "queue_stats"],
        [sys.executable, "-c", "import pqh_site.wsgi"],
        [sys.executable, "-c", "import pqh_site.asgi"],
    ],
    ids=["manage.py", "wsgi", "asgi"],
)
def test_a_bad_combination_stops_commands_and_the_app_with_one_line(tmp_path, args):
    proc = run(args, process_env(tmp_path, **BAD))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [E001_LINE]


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_bad_combination_stops_celery_at_start(tmp_path, command):
    proc = run(
        [sys.executable, "-m", "celery", "-A", "pqh_site", command], process_env(tmp_path, **BAD)
    )
    assert proc.returncode == 1
    assert E001_LINE in (proc.stderr + proc.stdout).splitlines()


def test_a_bad_combination_stops_the_procfile_web_server(tmp_path):
    # granian imports wsgi.py in each worker; a worker that exits at once is a crash loop, and
    # granian stops with a non-zero exit.
    env = process_env(tmp_path, **BAD, PQH_BIND=f"127.0.0.1:{free_port()}", PQH_WEB_WORKERS="1")
    proc = run(["sh", "-c", procfile_command("web")], env)
    assert proc.returncode != 0
    assert E001_LINE in (proc.stderr + proc.stdout).splitlines()


def test_zero_second_tasks_start_under_the_default_charge(tmp_path):
    # PQH_TASK_SECONDS=0 (work that returns at once) once stopped every process with an error
    # about PQH_LEVEL_BOUNDS_SECONDS, which PQH_CHARGE=tasks never reads.
    env = process_env(tmp_path, PQH_TASK_SECONDS="0")
    app = run([sys.executable, "-c", "import pqh_site.wsgi"], env)
    assert app.returncode == 0, app.stderr
    assert "pqh." not in app.stderr
    check = run([sys.executable, "manage.py", "check", "--tag", TAG], env)
    assert check.returncode == 0, check.stderr
    assert "System check identified no issues" in check.stdout


def test_zero_second_tasks_under_the_time_charge_ask_for_the_seconds_bounds(tmp_path):
    env = process_env(tmp_path, PQH_TASK_SECONDS="0", PQH_CHARGE="time")
    check = run([sys.executable, "manage.py", "check", "--tag", TAG], env)
    assert check.returncode == 1
    assert "(pqh.E004) PQH_CHARGE=time needs PQH_LEVEL_BOUNDS_SECONDS" in check.stderr
    assert "HINT: Set PQH_LEVEL_BOUNDS_SECONDS to 5 strictly increasing" in check.stderr
    fixed = run(
        [sys.executable, "manage.py", "check", "--tag", TAG],
        {**env, "PQH_LEVEL_BOUNDS_SECONDS": "6,36,96,156,216"},
    )
    assert fixed.returncode == 0, fixed.stderr


def test_a_warning_is_one_line_and_the_app_still_loads(tmp_path):
    app = run(
        [sys.executable, "-c", "import pqh_site.wsgi"], process_env(tmp_path, PQH_SSL_REDIRECT="1")
    )
    assert app.returncode == 0, app.stderr
    [line] = [line for line in app.stderr.splitlines() if "pqh." in line]
    assert line.startswith(
        "Warning: (pqh.W002) PQH_SSL_REDIRECT=1 without PQH_TRUST_X_FORWARDED_PROTO=1"
    )
