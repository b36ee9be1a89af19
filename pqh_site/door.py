"""The door: what refuses a request before the service works on it, counted, logged, replayed.

Three limits answer at the door, each with 429, `Retry-After` and a JSON body:
- failed password checks lock a client address out for a while (django-axes; users_app/lockout.py),
  refused before any password is hashed;
- each user's request rate, one for submissions and cancels and one for reads, and each
  address's rate of anonymous requests and failed token lookups (DRF throttles counted in Redis;
  users_app/throttling.py).

Every failure and refusal is counted in /metrics (`pqh_login_failures{method}`,
`pqh_door_refusals{reason}`) and logged as one `pqh.events` line, never with a password.

The gate (DoorGate, around the WSGI application): once a limit has refused a request, an
identical request (same client address, same Authorization header, same kind: read or write)
arriving before the limit would let it in is answered here with the same 429, before Django
runs: no middleware, no authentication, no PostgreSQL, no Redis. The decision is the limit's;
the gate only repeats it in this process, for at most REPLAY_SECONDS at a time (so a lockout an
operator clears stops being repeated within that), and counts it without logging it again. A
lockout covers every HTTP basic request from the address, whatever its password: a guesser who
sends a new password each time is answered here too, after its first refusal in each process. A
client that floods the door is thus refused for a fraction of what a served request costs, and
the others keep the rest.
"""

import json
import logging
import math
import threading
import time
from dataclasses import dataclass

from prometheus_client import Counter

from . import prometheus  # noqa: F401  (multiprocess mode before the metrics below)
from .client_address import client_address_of
from .errors import API_PATH, refusal_body

REFUSAL_REASONS = ("locked_out", "rate_submit", "rate_read", "rate_anon")
LOGIN_METHODS = ("basic", "form", "token")

LOGIN_FAILURES = Counter(
    "pqh_login_failures",
    "Credentials checked and found wrong, by how they came: basic (HTTP basic on the API), "
    "form (the admin's or the browsable API's login) or token (an unknown API token).",
    ["method"],
)
REFUSALS = Counter(
    "pqh_door_refusals",
    "Requests refused with 429 at the door, by reason: locked_out (too many failed logins "
    "from the address), rate_submit, rate_read (the user's rates), rate_anon (the address's "
    "rate of anonymous requests and failed tokens).",
    ["reason"],
)
for _method in LOGIN_METHODS:
    LOGIN_FAILURES.labels(method=_method)
for _reason in REFUSAL_REASONS:
    REFUSALS.labels(reason=_reason)

logger = logging.getLogger("pqh.events")

# The longest a refusal is repeated by the gate before the limit is asked again.
REPLAY_SECONDS = 10.0
# The most refusals one process remembers (expired ones are dropped first, then the oldest).
MAX_REMEMBERED = 10_000
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def method_kind(method: str) -> str:
    """ "read" for GET, HEAD and OPTIONS, "write" for the rest: the two rates' kinds."""
    return "read" if method.upper() in READ_METHODS else "write"


def event_login_failed(*, method: str, username: str, address: str, path: str) -> None:
    """Count and log credentials that were checked and found wrong (never the password)."""
    LOGIN_FAILURES.labels(method=method).inc()
    logger.info(
        "login_failed",
        extra={"method": method, "user": username, "client": address, "path": path},
    )


def event_door_refused(
    *, reason: str, username: str, address: str, path: str, retry_after: float
) -> None:
    """Count and log a refusal that a limit decided (the gate's repeats are counted only)."""
    REFUSALS.labels(reason=reason).inc()
    logger.info(
        "door_refused",
        extra={
            "reason": reason,
            "user": username,
            "client": address,
            "path": path,
            "retry_after": math.ceil(retry_after),
        },
    )


@dataclass(frozen=True)
class _Refusal:
    retry_at: float  # monotonic: when the limit would let the request in
    replay_until: float  # monotonic: when the gate stops repeating the refusal
    reason: str
    body: bytes


_refusals: dict[tuple[str, str, str], _Refusal] = {}
_lock = threading.Lock()


# The credential a lockout is remembered under: every HTTP basic login from the address, since
# axes refuses every password check from a locked-out address, whatever the password.
ANY_PASSWORD = "Basic *"


def remember_refusal(
    meta,
    *,
    reason: str,
    detail: str,
    code: str,
    retry_after: float,
    kinds: tuple[str, ...] = (),
    any_password: bool = False,
) -> None:
    """Let the gate repeat a refusal for identical requests until `retry_after` seconds pass.

    `meta` is the refused request's META (or WSGI environ); `kinds` the request kinds it covers
    (default: the request's own, read or write); with `any_password`, it covers every HTTP basic
    request from the address (a lockout), not only the refused one's credentials.
    """
    if retry_after <= 0:
        return
    now = time.monotonic()
    refusal = _Refusal(
        retry_at=now + retry_after,
        replay_until=now + min(retry_after, REPLAY_SECONDS),
        reason=reason,
        body=json.dumps(refusal_body(detail=detail, code=code), separators=(",", ":")).encode(),
    )
    address = client_address_of(meta)
    credential = ANY_PASSWORD if any_password else meta.get("HTTP_AUTHORIZATION", "")
    with _lock:
        for kind in kinds or (method_kind(meta.get("REQUEST_METHOD", "GET")),):
            _refusals.pop((address, credential, kind), None)
            while len(_refusals) >= MAX_REMEMBERED:
                # The oldest first, in constant time: a flood of new credentials cannot make
                # each insertion scan the table (expired entries go when they are looked up).
                _refusals.pop(next(iter(_refusals)))
            _refusals[(address, credential, kind)] = refusal


def forget_refusals() -> None:
    """Forget every refusal this process repeats (tests; an operator's clear waits it out)."""
    with _lock:
        _refusals.clear()


def _lookup(key: tuple[str, str, str], now: float) -> _Refusal | None:
    refusal = _refusals.get(key)
    if refusal is not None and refusal.replay_until <= now:
        _refusals.pop(key, None)
        return None
    return refusal


def replayed_refusal(environ) -> tuple[_Refusal, float] | None:
    """The refusal the gate repeats for this request and the seconds left, or None."""
    address = client_address_of(environ)
    credential = environ.get("HTTP_AUTHORIZATION", "")
    kind = method_kind(environ.get("REQUEST_METHOD", "GET"))
    now = time.monotonic()
    refusal = _lookup((address, credential, kind), now)
    if refusal is None and credential[:6].lower() == "basic ":
        refusal = _lookup((address, ANY_PASSWORD, kind), now)
    if refusal is None:
        return None
    return refusal, refusal.retry_at - now


class DoorGate:
    """WSGI middleware: answer a request a limit has just refused without running Django."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if _refusals and API_PATH.match(environ.get("PATH_INFO", "")):
            replayed = replayed_refusal(environ)
            if replayed is not None:
                refusal, left = replayed
                REFUSALS.labels(reason=refusal.reason).inc()
                start_response(
                    "429 Too Many Requests",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(refusal.body))),
                        ("Retry-After", str(max(1, math.ceil(left)))),
                    ],
                )
                return [refusal.body]
        return self.app(environ, start_response)
