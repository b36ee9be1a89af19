"""The typed environment readers of pqh_site/env.py and the `.env` reader: no database, no Redis."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from pqh_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_float_list,
    env_int,
    env_int_list,
    env_str,
    read_env_file,
)

NAME = "PQH_TEST_ENV_VALUE"


@pytest.fixture
def value(monkeypatch):
    """Set NAME to a value for one test."""

    def set_value(raw: str) -> None:
        monkeypatch.setenv(NAME, raw)

    monkeypatch.delenv(NAME, raising=False)
    return set_value


def error_of(reader, *args, **kwargs) -> str:
    with pytest.raises(ImproperlyConfigured) as caught:
        reader(NAME, *args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("reader", "default"),
    [
        (env_str, "fallback"),
        (env_int, 7),
        (env_float, 1.5),
        (env_bool, True),
        (env_float_list, [1.0, 2.0]),
        (env_int_list, [1, 2]),
    ],
)
@pytest.mark.parametrize("raw", [None, ""], ids=["unset", "empty"])
def test_an_unset_or_empty_variable_is_the_default(value, reader, default, raw):
    if raw is not None:
        value(raw)
    assert reader(NAME, default) == default


def test_env_str_returns_the_value_as_given(value):
    value(" as given ")
    assert env_str(NAME, "fallback") == " as given "


def test_env_int_reads_an_integer_and_names_the_variable_when_it_is_not_one(value):
    value("42")
    assert env_int(NAME, 1) == 42
    value("ten")
    assert error_of(env_int, 1) == f"{NAME} must be an integer, got 'ten'"
    value("1.5")
    assert error_of(env_int, 1) == f"{NAME} must be an integer, got '1.5'"


def test_env_int_minimum(value):
    value("0")
    assert error_of(env_int, 5, minimum=1) == f"{NAME} must be at least 1, got 0"
    value("1")
    assert env_int(NAME, 5, minimum=1) == 1


def test_env_float_reads_a_number_and_names_the_variable_when_it_is_not_one(value):
    value("0.25")
    assert env_float(NAME, 1.0) == 0.25
    value("1e3")
    assert env_float(NAME, 1.0) == 1000.0
    value("soon")
    assert error_of(env_float, 1.0) == f"{NAME} must be a number, got 'soon'"
    value("-1")
    assert error_of(env_float, 1.0, minimum=0.0) == f"{NAME} must be at least 0.0, got -1.0"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("Yes", True), (" on ", True)]
    + [("0", False), ("false", False), ("NO", False), ("off", False)],
)
def test_env_bool_reads_the_usual_spellings(value, raw, expected):
    value(raw)
    assert env_bool(NAME, not expected) is expected


def test_env_bool_names_the_variable_on_anything_else(value):
    value("maybe")
    assert error_of(env_bool, False) == f"{NAME} must be a boolean (1/0, true/false), got 'maybe'"


def test_env_choice_trims_and_lowers_and_names_the_variable_and_the_choices(value):
    value(" TIME ")
    assert env_choice(NAME, "tasks", ("tasks", "time")) == "time"
    value("seconds")
    assert (
        error_of(env_choice, "tasks", ("tasks", "time"))
        == f"{NAME} must be one of tasks, time, got 'seconds'"
    )


def test_env_choice_default_must_be_a_choice_too(value):
    assert env_choice(NAME, "tasks", ("tasks", "time")) == "tasks"


def test_env_float_list(value):
    value("6, 36,96")
    assert env_float_list(NAME, []) == [6.0, 36.0, 96.0]
    value("6,,96")
    assert error_of(env_float_list, []) == f"{NAME} must be comma-separated numbers, got '6,,96'"


def test_env_int_list(value):
    value("1,6,16")
    assert env_int_list(NAME, []) == [1, 6, 16]
    value("1,6.5")
    assert error_of(env_int_list, []) == f"{NAME} must be comma-separated integers, got '1,6.5'"


def test_the_env_file_fills_in_only_what_the_environment_does_not_set(tmp_path, monkeypatch):
    names = ["PQH_T_PLAIN", "PQH_T_SINGLE", "PQH_T_DOUBLE", "PQH_T_EXPORTED"]
    for name in names:
        # Recorded by monkeypatch, so the values the file sets are undone after the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("PQH_T_SET", "from the environment")
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# written by make run\n"
        "PQH_T_PLAIN=abc-123_XYZ\n"
        "PQH_T_SINGLE='two words # not a comment'\n"
        'PQH_T_DOUBLE="a \\"quoted\\" word"\n'
        "export PQH_T_EXPORTED=1\n"
        "PQH_T_SET=from the file\n"
    )
    read_env_file(env_file)
    assert env_str("PQH_T_PLAIN", "") == "abc-123_XYZ"
    assert env_str("PQH_T_SINGLE", "") == "two words # not a comment"
    assert env_str("PQH_T_DOUBLE", "") == 'a "quoted" word'
    assert env_bool("PQH_T_EXPORTED", False) is True
    assert env_str("PQH_T_SET", "") == "from the environment"


def test_a_missing_env_file_is_no_error(tmp_path):
    read_env_file(tmp_path / "no-such.env")
