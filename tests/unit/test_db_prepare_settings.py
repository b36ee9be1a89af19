"""Prepared statements: on by default (PostgreSQL binds the parameters, a statement run
PQH_DB_PREPARE_THRESHOLD times on a connection is prepared), off with PQH_DB_PREPARE=0."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env

PROBE = """
import json
from django.conf import settings
options = settings.DATABASES["default"]["OPTIONS"]
print(json.dumps({k: options.get(k) for k in ("server_side_binding", "prepare_threshold")}))
"""


def _options(**env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="pqh_site.settings", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"server_side_binding": True, "prepare_threshold": 5}),
        ({"PQH_DB_PREPARE_THRESHOLD": "0"}, {"server_side_binding": True, "prepare_threshold": 0}),
        ({"PQH_DB_PREPARE": "0"}, {"server_side_binding": None, "prepare_threshold": None}),
    ],
)
def test_prepared_statements_follow_the_settings(env, expected):
    assert _options(**env) == expected
