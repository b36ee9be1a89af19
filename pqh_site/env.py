"""Typed readers of environment variables, and the local `.env` file, for pqh_site.settings.

Each reader returns the variable's value, or the default when it is unset or empty, and fails
at once with a one-line ImproperlyConfigured naming the variable when the value cannot be read
(not a number, not one of the choices, below its minimum). Rules between settings are system
checks instead (pqh_site/checks.py). Nothing here imports Django's settings.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv


def read_env_file(path: Path) -> None:
    """Set the variables of the `.env` file at `path` that the environment does not set.

    python-dotenv is the only reader of `.env`: `make run` starts its processes under its
    `dotenv run --no-override`, so both see the same values, quoting included. A missing file
    is no error (`make test`, containers).
    """
    load_dotenv(path, override=False)


def _raw(name: str) -> str | None:
    """Return the variable `name`, or None when it is unset or empty."""
    return os.environ.get(name) or None


def env_str(name: str, default: str) -> str:
    """Return the variable `name`, or `default` when it is unset or empty."""
    return _raw(name) or default


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Return the variable `name` as an int; fail naming the variable if it is not one."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """Return the variable `name` as a float; fail naming the variable if it is not one."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    """Return the variable `name` as a bool (1/0, true/false, yes/no, on/off)."""
    raw = _raw(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Return the variable `name` (trimmed, in lower case), which must be one of `choices`."""
    value = env_str(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_float_list(name: str, default: list[float]) -> list[float]:
    """Return the variable `name` as a comma-separated list of numbers."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return [float(part) for part in raw.split(",")]
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be comma-separated numbers, got {raw!r}") from None


def env_int_list(name: str, default: list[int]) -> list[int]:
    """Return the variable `name` as a comma-separated list of ints."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return [int(part) for part in raw.split(",")]
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be comma-separated integers, got {raw!r}"
        ) from None
