"""Management commands: tools for people, with clear errors and non-zero exits."""

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from tasks_app.models import TaskRecord
from tasks_app.services.submission import task_submit
from tests.conftest import ROOT, subprocess_env
from users_app.models import Profile

pytestmark = pytest.mark.django_db

User = get_user_model()


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_api_user_prints_the_token_last():
    output = run("create_api_user", "dora", "--weight", "4")
    token = Token.objects.get(user__username="dora")
    assert output.strip().splitlines()[-1] == token.key
    assert Profile.objects.get(user__username="dora").weight == 4


def test_create_api_user_again_keeps_the_token_and_updates_the_weight():
    first = run("create_api_user", "dora").strip().splitlines()[-1]
    second = run("create_api_user", "dora", "--weight", "2").strip().splitlines()[-1]
    assert first == second
    assert Profile.objects.get(user__username="dora").weight == 2


def test_set_weight(alice):
    assert "weight 3" in run("set_weight", "alice", "3")
    assert Profile.objects.get(user=alice[0]).weight == 3


# Every one-line error of bad input to pqh's commands: what it says, and the command it names
# to fix it (the last one in backquotes), which then works.
BAD_INPUT = [
    (
        ("set_weight", "nobody", "2"),
        "no user named 'nobody': create it with `manage.py create_api_user nobody --weight 2`",
    ),
    (
        ("set_weight", "alice", "0"),
        "the weight must be an integer from 1 to 2147483647, got '0': e.g. "
        "`manage.py set_weight alice 1`",
    ),
    (
        ("set_weight", "alice", "heavy"),
        "the weight must be an integer from 1 to 2147483647, got 'heavy': e.g. "
        "`manage.py set_weight alice 1`",
    ),
    (
        ("create_api_user", "erin", "--weight", "-1"),
        "--weight must be an integer from 1 to 2147483647, got '-1': e.g. "
        "`manage.py create_api_user erin --weight 1`",
    ),
    (
        ("set_weight", "alice", "2147483648"),
        "the weight must be an integer from 1 to 2147483647, got '2147483648': e.g. "
        "`manage.py set_weight alice 1`",
    ),
    (
        ("create_api_user", "erin\x07"),
        "the user name 'erin\\x07' is not allowed: a user name is 1 to 150 letters, digits "
        "and @ . + - _ (no spaces or control characters): e.g. `manage.py create_api_user alice`",
    ),
    (
        ("create_api_user", "erin smith"),
        "the user name 'erin smith' is not allowed: a user name is 1 to 150 letters, digits "
        "and @ . + - _ (no spaces or control characters): e.g. `manage.py create_api_user alice`",
    ),
    (
        ("reset_window", "nobody"),
        "no user named 'nobody': `manage.py queue_stats` lists the users with a live window "
        "(names are case-sensitive)",
    ),
    (
        ("reset_window",),
        "give either a USERNAME or --all: `manage.py reset_window NAME` or "
        "`manage.py reset_window --all`",
    ),
    (
        ("cancel_queued", "Alice"),
        "no user named 'Alice': `manage.py queue_stats` lists the users with a live window "
        "(names are case-sensitive)",
    ),
    (
        ("cancel_queued", "alice", "--level", "9"),
        "--level must be an integer from 0 to 5, got '9': e.g. "
        "`manage.py cancel_queued alice --level 5`",
    ),
    (
        ("fairness_report", "--since", "soon"),
        "--since must be a positive duration like 90s, 15m, 1h or 2d, got 'soon': e.g. "
        "`manage.py fairness_report --since 1h`",
    ),
    (
        ("lockouts", "clear", "--address", "nowhere"),
        "'nowhere' is not an IP address: `manage.py lockouts` lists the addresses locked out",
    ),
    (
        ("lockouts", "clear"),
        "say what to clear: --address A, --user NAME, or --all: e.g. "
        "`manage.py lockouts clear --all`",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=lambda v: " ".join(v)[:40])
def test_bad_input_is_one_line_naming_the_command_that_fixes_it(alice, args, message):
    with pytest.raises(CommandError) as refused:
        run(*args)
    assert str(refused.value) == message
    fix = re.findall(r"`manage\.py ([^`]+)`", message)[-1]
    run(*shlex.split(fix))  # the command it names works


def test_a_user_name_with_a_control_character_is_refused_and_not_created():
    for name in ("tab\there", "nul\x00", "line\nbreak", "", "x" * 151):
        with pytest.raises(CommandError, match="is not allowed: a user name is 1 to 150"):
            run("create_api_user", name)
    assert not User.objects.exclude(username="alice").exists()
    assert "created user caf\u00e9.o+k@x-y_z" in run("create_api_user", "caf\u00e9.o+k@x-y_z")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a child process on the test database and Redis prefix."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("set_weight", "nobody-at-all", "2"),
        ("set_weight", "nobody-at-all", "heavy"),
        ("create_api_user", "two\nlines"),
        ("cancel_queued", "nobody-at-all", "--level", "top"),
    ],
    ids=["user", "weight", "name", "level"],
)
def test_bad_input_exits_non_zero_with_one_line(args):
    proc = manage(*args)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), proc.stderr
    assert "`manage.py " in lines[0]
    assert proc.stdout == ""


COMMANDS = [
    ("set_weight", "alice", "2"),
    ("create_api_user", "alice"),
    ("queue_stats",),
    ("queue_stats", "--json"),
    ("cancel_queued", "alice", "--level", "1"),
    ("fairness_report", "--json"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_missing_database_is_one_line_naming_it_and_the_fix(args):
    missing = f"pqh_no_such_database_{os.getpid()}"
    proc = manage(*args, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{missing}")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"database '{missing}' does not exist" in lines[0]
    assert "manage.py bootstrap" in lines[0] and "make run" in lines[0]
    assert proc.stdout == ""


@pytest.mark.django_db(transaction=True)
def test_an_unmigrated_database_is_one_line_naming_the_migration(scratch_database):
    import psycopg
    from psycopg import sql

    from pqh_site.database import connect_params

    url = scratch_database("unmigrated")
    name = url.rsplit("/", 1)[1]
    params = connect_params(settings.DATABASES["default"])
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    for args in (("set_weight", "alice", "2"), ("cancel_queued", "alice")):
        proc = manage(*args, DATABASE_URL=url)
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert lines == [
            f"CommandError: the database '{name}' at 127.0.0.1:5432 is not migrated (relation "
            '"auth_user" does not exist); run `manage.py bootstrap` or `manage.py migrate`'
        ], proc.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unreachable_postgres_is_one_line_with_the_start_command(args):
    # Nothing listens on port 1 of the loopback.
    proc = manage(*args, DATABASE_URL="postgres://postgres@127.0.0.1:1/pqh")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "PostgreSQL at 127.0.0.1:1 is unreachable" in lines[0]
    assert "pg_ctlcluster" in lines[0]


@pytest.mark.parametrize(
    "args", [("queue_stats",), ("bootstrap", "--no-demo"), ("reset_window", "--all")], ids=" ".join
)
def test_an_unreachable_redis_is_one_line_with_the_start_command(args):
    proc = manage(*args, REDIS_URL="redis://127.0.0.1:1/0")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Redis at redis://127.0.0.1:1/0 is unreachable" in lines[0]
    assert "redis-server" in lines[0]


def test_a_missing_setting_is_one_line():
    proc = manage("queue_stats", PQH_VISIBILITY_TIMEOUT="ten")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "ImproperlyConfigured: PQH_VISIBILITY_TIMEOUT must be an integer, got 'ten'"
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # A value that cannot be read: at import, naming the variable.
        ({"PQH_CHARGE": "seconds"}, "PQH_CHARGE must be one of tasks, time, got 'seconds'"),
        # Values that cannot work together: the system check's id, what is wrong and the fix.
        (
            {"PQH_CHARGE": "time", "PQH_LEVEL_BOUNDS_SECONDS": "60,30,90,120,150"},
            "(pqh.E003) PQH_LEVEL_BOUNDS_SECONDS must be 5 strictly increasing positive numbers "
            "(one per bound of PQH_LEVEL_BOUNDS), got [60.0, 30.0, 90.0, 120.0, 150.0]. Give one "
            "bound in seconds per bound of PQH_LEVEL_BOUNDS, each larger than the one before, or "
            "unset it to use PQH_LEVEL_BOUNDS × PQH_TASK_SECONDS.",
        ),
    ],
    ids=["charge", "bounds"],
)
def test_a_bad_charge_setting_is_one_line(env, message):
    proc = manage("queue_stats", **env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"ImproperlyConfigured: {message}"]


def test_bootstrap_prints_the_weights_that_are_stored(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    first = run("bootstrap")
    assert "  token for demo1 (weight 1): " in first
    assert "  token for demo2 (weight 3): " in first
    assert Profile.objects.get(user__username="demo2").weight == 3
    # An operator changes a demo user's weight: the next start keeps it and says so.
    run("set_weight", "demo2", "5")
    again = run("bootstrap")
    assert "  token for demo2 (weight 5): " in again
    assert Profile.objects.get(user__username="demo2").weight == 5
    tokens = {
        line.split(": ")[0]: line.split(": ")[1] for line in again.splitlines() if "token" in line
    }
    assert tokens["  token for demo2 (weight 5)"] == Token.objects.get(user__username="demo2").key


def test_create_api_user_prints_the_weight_it_stored():
    assert "created user dora with weight 4" in run("create_api_user", "dora", "--weight", "4")
    assert "updated user dora with weight 4" in run("create_api_user", "dora")


def test_queue_stats_shows_levels_and_live_windows(alice, bob):
    for i in range(3):
        task_submit(user=alice[0], x=i)
    task_submit(user=bob[0], x=0)
    stats = json.loads(run("queue_stats", "--json"))
    assert [row["queued"] for row in stats["levels"]] == [2, 2, 0, 0, 0, 0]
    assert (stats["charge"], stats["unit"], stats["bounds"]) == (
        "tasks",
        "tasks",
        [1, 6, 16, 26, 36],
    )
    alice_at = max(r.submitted_at for r in TaskRecord.objects.filter(user=alice[0]))
    bob_at = TaskRecord.objects.get(user=bob[0]).submitted_at
    level0 = [row.pop("level0_at") for row in stats["users"]]
    assert stats["users"] == [
        {
            "user": "alice",
            "count": 3,
            "usage": 3,
            "weight": 1,
            "team": None,
            "team_weight": None,
            "usage_per_weight": 3,
            "next_level": 1,
        },
        {
            "user": "bob",
            "count": 1,
            "usage": 1,
            "weight": 1,
            "team": None,
            "team_weight": None,
            "usage_per_weight": 1,
            "next_level": 1,
        },
    ]
    window = timedelta(seconds=settings.PQH_WINDOW_SECONDS)
    for at, submitted in zip(level0, (alice_at, bob_at), strict=True):
        got = datetime.fromisoformat(at.replace("Z", "+00:00"))
        assert abs((got - (submitted + window)).total_seconds()) < 1e-3
    text = run("queue_stats")
    assert "charge: tasks (level bounds per weight, in tasks: 1, 6, 16, 26, 36)" in text
    assert (
        "alice: count 3, usage 3 task(s), weight 1, no team, next level 1, back at level 0 at "
        in text
    )
    assert "total queued: 4" in text


def test_queue_stats_under_time_shows_seconds_per_weight(alice, charlie, settings):
    settings.PQH_CHARGE = "time"
    for i in range(3):
        task_submit(user=alice[0], x=i)
    for i in range(13):
        task_submit(user=charlie[0], x=i)
    stats = json.loads(run("queue_stats", "--json"))
    assert (stats["charge"], stats["unit"]) == ("time", "seconds")
    rows = {row["user"]: row for row in stats["users"]}
    assert rows["alice"]["usage"] == pytest.approx(0.6) and rows["alice"]["next_level"] == 1
    # Charlie (weight 6): 13 x 0.2 s = 2.6 s, 0.43 s per weight: level 1 until 12 have left.
    assert rows["charlie"]["usage_per_weight"] == pytest.approx(2.6 / 6)
    assert rows["charlie"]["next_level"] == 1 and rows["charlie"]["level0_at"] is not None
    text = run("queue_stats")
    assert "charge: time (level bounds per weight, in seconds: 0.2 s, 1.2 s," in text
    assert (
        "charlie: count 13, usage 2.6 s = 0.4 s per weight, weight 6, no team, next level 1" in text
    )
