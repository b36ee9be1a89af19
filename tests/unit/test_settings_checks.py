"""Settings that cannot work together: system checks pqh.E…/W… (pqh_site/checks.py).

Each id fails on its combination and passes on the nearest good one; `manage.py check` lists
them; manage.py, the web server (wsgi, asgi, granian through the Procfile) and Celery's worker
and beat refuse to start on an error with one line and a non-zero exit. None of the in-process
tests needs PostgreSQL or Redis.
"""

from io import StringIO

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from pqh_site.checks import TAG
from tests.conftest import ROOT

DEFAULT_BOUNDS = [1, 6, 16, 26, 36]


def unset_seconds(bounds: list[int], task_seconds: float = 60.0) -> dict:
    """The count bounds, with the seconds bounds settings.py derives when they are unset."""
    return {
        "PQH_LEVEL_BOUNDS": bounds,
        "PQH_TASK_SECONDS": task_seconds,
        "PQH_LEVEL_BOUNDS_SECONDS": [b * task_seconds for b in bounds],
    }


CASES = {
    "pqh.E001": (
        {"PQH_TASK_TIME_LIMIT": 1800, "PQH_VISIBILITY_TIMEOUT": 1830},
        {"PQH_TASK_TIME_LIMIT": 1800, "PQH_VISIBILITY_TIMEOUT": 1831},
    ),
    "pqh.E002": (unset_seconds([1, 6, 6, 26, 36]), unset_seconds([1, 6, 7, 26, 36])),
    "pqh.E003": (
        {
            "PQH_CHARGE": "time",
            "PQH_LEVEL_BOUNDS": DEFAULT_BOUNDS,
            "PQH_TASK_SECONDS": 60.0,
            "PQH_LEVEL_BOUNDS_SECONDS": [60.0, 30.0, 90.0, 120.0, 150.0],
        },
        {
            "PQH_CHARGE": "time",
            "PQH_LEVEL_BOUNDS": DEFAULT_BOUNDS,
            "PQH_TASK_SECONDS": 60.0,
            "PQH_LEVEL_BOUNDS_SECONDS": [30.0, 60.0, 90.0, 120.0, 150.0],
        },
    ),
    "pqh.E004": (
        {
            "PQH_CHARGE": "time",
            "PQH_LEVEL_BOUNDS": DEFAULT_BOUNDS,
            "PQH_TASK_SECONDS": 0.0,
            "PQH_LEVEL_BOUNDS_SECONDS": [0.0] * 5,  # the default: bounds × 0 s
        },
        {
            "PQH_CHARGE": "time",
            "PQH_LEVEL_BOUNDS": DEFAULT_BOUNDS,
            "PQH_TASK_SECONDS": 0.0,
            "PQH_LEVEL_BOUNDS_SECONDS": [6.0, 36.0, 96.0, 156.0, 216.0],
        },
    ),
    "pqh.E005": (
        {"PQH_MAX_INPUT_BYTES": 65536, "PQH_MAX_BODY_BYTES": 65535},
        {"PQH_MAX_INPUT_BYTES": 65536, "PQH_MAX_BODY_BYTES": 65536},
    ),
    "pqh.E006": (
        {"PQH_MAX_HEADER_BYTES": 8192, "PQH_SERVER_MAX_HEADER_BYTES": 8192},
        {"PQH_MAX_HEADER_BYTES": 8192, "PQH_SERVER_MAX_HEADER_BYTES": 8193},
    ),
    "pqh.W001": (
        {
            "PQH_CHARGE": "tasks",
            "PQH_LEVEL_BOUNDS": DEFAULT_BOUNDS,
            "PQH_TASK_SECONDS": 60.0,
            "PQH_LEVEL_BOUNDS_SECONDS": [6.0, 36.0, 96.0, 156.0, 216.0],
        },
        {
            "PQH_CHARGE": "tasks",
            "PQH_LEVEL_BOUNDS": DEFAULT_BOUNDS,
            "PQH_TASK_SECONDS": 60.0,
            "PQH_LEVEL_BOUNDS_SECONDS": [60.0, 360.0, 960.0, 1560.0, 2160.0],  # the default
        },
    ),
    "pqh.W002": (
        {"SECURE_SSL_REDIRECT": True, "SECURE_PROXY_SSL_HEADER": None},
        {
            "SECURE_SSL_REDIRECT": True,
            "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
        },
    ),
}


def pqh_findings(**overrides) -> list:
    with override_settings(**overrides):
        return run_checks(tags=[TAG])


@pytest.mark.parametrize("check_id", CASES)
def test_each_check_fails_on_its_combination_and_passes_on_the_nearest_good_one(check_id):
    bad, good = CASES[check_id]
    found = pqh_findings(**bad)
    assert [m.id for m in found] == [check_id]
    assert found[0].is_serious() is check_id.startswith("pqh.E")
    assert found[0].hint
    assert pqh_findings(**good) == []


def test_the_test_settings_and_the_defaults_pass():
    assert run_checks(tags=[TAG]) == []
    assert (
        pqh_findings(
            PQH_TASK_SECONDS=60.0, PQH_LEVEL_BOUNDS_SECONDS=[60.0, 360.0, 960.0, 1560.0, 2160.0]
        )
        == []
    )


def test_every_id_is_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for check_id in CASES:
        assert f"`{check_id}`" in readme


def test_the_seconds_bounds_are_judged_only_under_the_time_charge():
    # Wrong in every way, but PQH_CHARGE=tasks never reads them: a warning, not an error.
    found = pqh_findings(PQH_CHARGE="tasks", PQH_LEVEL_BOUNDS_SECONDS=[-1.0])
    assert [m.id for m in found] == ["pqh.W001"]
    found = pqh_findings(PQH_CHARGE="time", PQH_LEVEL_BOUNDS_SECONDS=[-1.0])
    assert [m.id for m in found] == ["pqh.E003"]


def test_no_time_charge_with_zero_second_tasks_names_the_setting_to_set():
    found = pqh_findings(**CASES["pqh.E004"][0])
    assert "PQH_LEVEL_BOUNDS_SECONDS" in found[0].msg
    assert found[0].hint.startswith("Set PQH_LEVEL_BOUNDS_SECONDS to 5 strictly increasing")
    assert "6,36,96,156,216" in found[0].hint


def test_zero_second_tasks_under_the_count_charge_pass():
    # The default seconds bounds are then all 0, and nothing reads them.
    assert (
        pqh_findings(PQH_CHARGE="tasks", PQH_TASK_SECONDS=0.0, PQH_LEVEL_BOUNDS_SECONDS=[0.0] * 5)
        == []
    )


def test_manage_py_check_lists_an_error_with_its_id_and_hint():
    with override_settings(**CASES["pqh.E001"][0]), pytest.raises(SystemCheckError) as caught:
        call_command("check", "--tag", TAG, stdout=StringIO(), stderr=StringIO())
    assert "(pqh.E001) PQH_VISIBILITY_TIMEOUT must be longer" in str(caught.value)
    assert "HINT: Set PQH_VISIBILITY_TIMEOUT above 1830" in str(caught.value)


def test_silenced_checks_are_silent():
    with override_settings(**CASES["pqh.E001"][0], SILENCED_SYSTEM_CHECKS=["pqh.E001"]):
        call_command("check", "--tag", TAG, stdout=StringIO(), stderr=StringIO())


NOWHERE = {
    "DJANGO_SETTINGS_MODULE": "pqh_site.settings",
    "PQH_SECRET_KEY": "test-only-secret-key",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:1/pqh_nowhere",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "PQH_REDIS_PREFIX": "pqhtest_nowhere",
}


BAD = {"PQH_TASK_TIME_LIMIT": "1800", "PQH_VISIBILITY_TIMEOUT": "1830"}  # pqh.E001


E001_LINE = (
    "ImproperlyConfigured: (pqh.E001) PQH_VISIBILITY_TIMEOUT must be longer than "
    "PQH_TASK_TIME_LIMIT + 30 s, got 1830 <= 1800 + 30: the broker would hand a task that is "
    "still running to another worker. Set PQH_VISIBILITY_TIMEOUT above 1830, or lower "
    "PQH_TASK_TIME_LIMIT."
)
