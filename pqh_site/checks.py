"""System checks on settings that each read well but cannot work together (pqh.E…, pqh.W…).

A value that cannot be read at all (not a number, not one of the choices) fails at import, in
pqh_site/env.py. A combination is judged here, after import: `manage.py check` lists every
finding with its id and fix (README, "Configuration"), and manage.py, the web server
(wsgi.py, asgi.py) and Celery's worker and beat call `stop_if_misconfigured()` so that none of
them starts on an error. A rule about a setting applies only where the setting is used: the
seconds bounds are judged only under PQH_CHARGE=time.

Every check reads django.conf.settings and nothing else, so tests drive them with
override_settings; none touches PostgreSQL or Redis.
"""

import sys
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, run_checks

TAG = "pqh"  # `manage.py check --tag pqh` runs these alone


def _increasing(values: list[float]) -> bool:
    """True when `values` is a non-empty, strictly increasing list of positive numbers."""
    return bool(values) and values[0] > 0 and all(a < b for a, b in pairwise(values))


def check_visibility_timeout(**kwargs: Any) -> list[CheckMessage]:
    """pqh.E001: the broker must not deliver a task again while a worker may still run it."""
    limit = settings.PQH_TASK_TIME_LIMIT + 30  # the hard limit (CELERY_TASK_TIME_LIMIT)
    if settings.PQH_VISIBILITY_TIMEOUT > limit:
        return []
    return [
        Error(
            "PQH_VISIBILITY_TIMEOUT must be longer than PQH_TASK_TIME_LIMIT + 30 s, got "
            f"{settings.PQH_VISIBILITY_TIMEOUT} <= {settings.PQH_TASK_TIME_LIMIT} + 30: the "
            "broker would hand a task that is still running to another worker",
            hint=f"Set PQH_VISIBILITY_TIMEOUT above {limit}, or lower PQH_TASK_TIME_LIMIT.",
            id="pqh.E001",
        )
    ]


def check_level_bounds(**kwargs: Any) -> list[CheckMessage]:
    """pqh.E002: the count bounds make the level table (and, under either charge, its size)."""
    bounds = settings.PQH_LEVEL_BOUNDS
    if _increasing(bounds):
        return []
    return [
        Error(
            f"PQH_LEVEL_BOUNDS must be strictly increasing positive integers, got {bounds}",
            hint="Set PQH_LEVEL_BOUNDS to counts such as 1,6,16,26,36 (the default).",
            id="pqh.E002",
        )
    ]


def check_level_bounds_seconds(**kwargs: Any) -> list[CheckMessage]:
    """pqh.E003, pqh.E004, pqh.W001: the seconds bounds, which only PQH_CHARGE=time reads."""
    seconds = list(settings.PQH_LEVEL_BOUNDS_SECONDS)
    counts = settings.PQH_LEVEL_BOUNDS
    task_seconds = settings.PQH_TASK_SECONDS
    # Unset, the setting is this product (settings.py): judge the product through its factors.
    derived = [b * task_seconds for b in counts]
    if settings.PQH_CHARGE != "time":
        if seconds == derived:
            return []
        return [
            Warning(
                "PQH_LEVEL_BOUNDS_SECONDS is set but has no effect: PQH_CHARGE=tasks sets "
                "levels from PQH_LEVEL_BOUNDS",
                hint="Set PQH_CHARGE=time to charge seconds of work, or unset "
                "PQH_LEVEL_BOUNDS_SECONDS.",
                id="pqh.W001",
            )
        ]
    if seconds == derived:
        if task_seconds > 0:
            return []  # valid whenever PQH_LEVEL_BOUNDS is (else pqh.E002 says so)
        return [
            Error(
                "PQH_CHARGE=time needs PQH_LEVEL_BOUNDS_SECONDS: its default, PQH_LEVEL_BOUNDS "
                f"× PQH_TASK_SECONDS, is {seconds} with PQH_TASK_SECONDS={task_seconds:g}",
                hint=f"Set PQH_LEVEL_BOUNDS_SECONDS to {len(counts)} strictly increasing "
                "positive numbers of seconds, about each count bound times a typical task's "
                f"seconds ({','.join(f'{b * 6:g}' for b in counts)} for 6-second tasks).",
                id="pqh.E004",
            )
        ]
    if len(seconds) == len(counts) and _increasing(seconds):
        return []
    return [
        Error(
            f"PQH_LEVEL_BOUNDS_SECONDS must be {len(counts)} strictly increasing positive "
            f"numbers (one per bound of PQH_LEVEL_BOUNDS), got {seconds}",
            hint="Give one bound in seconds per bound of PQH_LEVEL_BOUNDS, each larger than "
            "the one before, or unset it to use PQH_LEVEL_BOUNDS × PQH_TASK_SECONDS.",
            id="pqh.E003",
        )
    ]


def check_request_limits(**kwargs: Any) -> list[CheckMessage]:
    """pqh.E005, pqh.E006: each request limit leaves room for the one inside it."""
    found: list[CheckMessage] = []
    if settings.PQH_MAX_BODY_BYTES < settings.PQH_MAX_INPUT_BYTES:
        found.append(
            Error(
                "PQH_MAX_BODY_BYTES must be at least PQH_MAX_INPUT_BYTES, got "
                f"{settings.PQH_MAX_BODY_BYTES} < {settings.PQH_MAX_INPUT_BYTES}: an `x` "
                "the API accepts could not be sent",
                hint="Raise PQH_MAX_BODY_BYTES (default 1048576) or lower PQH_MAX_INPUT_BYTES.",
                id="pqh.E005",
            )
        )
    if settings.PQH_SERVER_MAX_HEADER_BYTES <= settings.PQH_MAX_HEADER_BYTES:
        found.append(
            Error(
                "PQH_SERVER_MAX_HEADER_BYTES must be larger than PQH_MAX_HEADER_BYTES, got "
                f"{settings.PQH_SERVER_MAX_HEADER_BYTES} <= {settings.PQH_MAX_HEADER_BYTES}: "
                "the web server would refuse, without JSON, fields Django answers for",
                hint="Raise PQH_SERVER_MAX_HEADER_BYTES (default 131072) or lower "
                "PQH_MAX_HEADER_BYTES.",
                id="pqh.E006",
            )
        )
    return found


def check_ssl_redirect(**kwargs: Any) -> list[CheckMessage]:
    """pqh.W002: behind a proxy that terminates TLS, the redirect needs the proxy's header."""
    if not settings.SECURE_SSL_REDIRECT or getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        return []
    return [
        Warning(
            "PQH_SSL_REDIRECT=1 without PQH_TRUST_X_FORWARDED_PROTO=1: behind a proxy that "
            "terminates TLS every request looks like http:// and is redirected, for ever",
            hint="Set PQH_TRUST_X_FORWARDED_PROTO=1 behind a proxy that sets X-Forwarded-Proto "
            "(and drops the client's); leave it off only if this server receives HTTPS itself.",
            id="pqh.W002",
        )
    ]


CHECKS = (
    check_visibility_timeout,
    check_level_bounds,
    check_level_bounds_seconds,
    check_request_limits,
    check_ssl_redirect,
)


def one_line(message: CheckMessage) -> str:
    """Return a finding as one line: its kind, id, what is wrong and the fix."""
    kind = "ImproperlyConfigured" if message.is_serious() else "Warning"
    hint = f" {message.hint}" if message.hint else ""
    return f"{kind}: ({message.id}) {message.msg}.{hint}"


def stop_if_misconfigured(*, warn: bool = True) -> None:
    """Exit with one line per pqh error (and print one per warning with `warn`).

    For the processes that no system check stops: a web server imports wsgi.py or asgi.py
    and serves, and Celery's Django fixup runs the checks but ignores what they find. manage.py
    calls it too, so that a command stops on one line, as it does on a value it cannot read.
    Needs the app registry (django.setup()).
    """
    found = [m for m in run_checks(tags=[TAG]) if not m.is_silenced()]
    errors = [m for m in found if m.is_serious()]
    # The process's own stderr: Celery's beat replaces sys.stderr with a logging proxy, which
    # loses what is written as the process exits.
    stream = sys.__stderr__ or sys.stderr
    for message in found:
        if warn or message.is_serious():
            print(one_line(message), file=stream, flush=True)
    if errors:
        raise SystemExit(1)
