"""Management commands: tools for people, with clear errors and non-zero exits."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from tasks_app.services import task_submit
from users_app.models import Profile

from .conftest import ROOT

pytestmark = pytest.mark.django_db


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set_weight", "nobody", "2"), "no user named 'nobody'"),
        (("set_weight", "alice", "0"), "weight must be at least 1"),
        (("create_api_user", "erin", "--weight", "-1"), "weight must be at least 1"),
    ],
)
def test_bad_input_is_a_clear_error(alice, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_bad_input_exits_non_zero_with_one_line():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    proc = subprocess.run(
        [sys.executable, "manage.py", "set_weight", "nobody-at-all", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == ["CommandError: no user named 'nobody-at-all'"]


def test_queue_stats_shows_levels_and_live_windows(alice, bob):
    for i in range(3):
        task_submit(user=alice[0], x=i)
    task_submit(user=bob[0], x=0)
    stats = json.loads(run("queue_stats", "--json"))
    assert [row["queued"] for row in stats["levels"]] == [2, 2, 0, 0, 0, 0]
    assert stats["users"] == [
        {"user": "alice", "count": 3, "weight": 1, "next_level": 1},
        {"user": "bob", "count": 1, "weight": 1, "next_level": 1},
    ]
    text = run("queue_stats")
    assert "alice: count 3, weight 1, next level 1" in text
    assert "total queued: 4" in text
