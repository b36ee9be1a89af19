"""Request rates at the door: DRF throttles whose counts live in Redis, shared by every process.

Each authenticated user has two rates: one for writes (submissions and cancels,
PQH_SUBMIT_RATE) and one for reads (polls, lists, usage, PQH_READ_RATE); an operator can give a
user rates of its own in the admin, beside its weight and cap. Anonymous requests, and failed
token lookups, count against their client address (PQH_ANON_RATE). DRF's own rate throttles keep
a list of times in Django's cache and read, then write it ("open to race conditions", as DRF
says); these take one request from a token bucket in one atomic Redis round trip
(fairqueue/rates.py), so concurrent requests on many processes cannot slip past together, and
an idle client costs no memory.

A refused request answers 429 with Retry-After and `{"detail", "code": "rate_limited"}`, and is
repeated by the gate (pqh_site/door.py) for identical requests until the bucket has room.
If Redis cannot be reached the rates are not enforced (the request goes on, and is logged):
reads still work from PostgreSQL, and submissions are refused by the queue itself.
"""

import logging
from functools import cache

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from fairqueue.rates import Rate, parse_rate
from pqh_site import door
from pqh_site.client_address import client_address
from pqh_site.core import core

logger = logging.getLogger(__name__)

RATE_LIMITED = "rate_limited"


@cache
def _parsed(text: str | None) -> Rate | None:
    return parse_rate(text)


def _refuse(request, *, scope: str, noun: str, rate: Rate, wait: float, username: str) -> None:
    """Count, log and remember a refusal of `request` (a DRF or Django request)."""
    detail = f"too many {noun}: the rate is {rate.text}; retry after the seconds in Retry-After"
    request.pqh_refusal_detail = detail
    door.event_door_refused(
        reason=f"rate_{scope}",
        username=username,
        address=client_address(request),
        path=request.path,
        retry_after=wait,
    )
    door.remember_refusal(
        request.META, reason=f"rate_{scope}", detail=detail, code=RATE_LIMITED, retry_after=wait
    )


def _take(scope: str, ident: object, rate: Rate, now: float | None) -> float:
    try:
        return core().rates.take(scope=scope, ident=ident, rate=rate, now=now)
    except redis.RedisError as exc:
        logger.warning("request rate %s not enforced: Redis unavailable (%s)", scope, exc)
        return 0.0


class RateThrottle(BaseThrottle):
    """A DRF throttle counted in a Redis token bucket; subclasses name whom a request counts for."""

    scope = ""
    noun = "requests"
    # Injectable clock, as DRF's throttles have; None: the bucket's own (Redis's TIME), so a
    # request delayed on its way to Redis is not judged at an instant older than the last one.
    timer = None

    def __init__(self) -> None:
        self._wait: float | None = None

    def ident(self, request) -> object | None:
        """Whose bucket the request counts in, or None if this throttle does not apply."""
        raise NotImplementedError

    def rate_text(self, request) -> str | None:
        """The rate that applies to the request, as "N/period" (or "off")."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        rate = _parsed(self.rate_text(request))
        if rate is None:
            return True
        wait = _take(self.scope, ident, rate, self.timer() if self.timer else None)
        if wait <= 0:
            return True
        self._wait = wait
        user = request.user
        name = user.get_username() if user is not None and user.is_authenticated else ""
        _refuse(request, scope=self.scope, noun=self.noun, rate=rate, wait=wait, username=name)
        return False

    def wait(self) -> float | None:
        return self._wait


def _own_rate(user, field: str) -> str | None:
    profile = getattr(user, "profile", None)
    return getattr(profile, field, None) or None


class UserRateThrottle(RateThrottle):
    """Requests of one kind (`kind`: writes or reads) per user: the user's own rate (the
    profile's `own_rate` field), else the setting `default_rate`."""

    kind = own_rate = default_rate = ""

    def ident(self, request):
        user = request.user
        if (
            user is None
            or not user.is_authenticated
            or door.method_kind(request.method) != self.kind
        ):
            return None
        return user.pk

    def rate_text(self, request):
        return _own_rate(request.user, self.own_rate) or getattr(settings, self.default_rate)


class SubmitRateThrottle(UserRateThrottle):
    """Writes (submissions, cancels) per user: the user's own rate, else PQH_SUBMIT_RATE."""

    scope = "submit"
    noun = "submissions and cancels"
    kind, own_rate, default_rate = "write", "submit_rate", "PQH_SUBMIT_RATE"


class ReadRateThrottle(UserRateThrottle):
    """Reads (polls, lists, usage) per user: the user's own rate, else PQH_READ_RATE."""

    scope = "read"
    noun = "reads"
    kind, own_rate, default_rate = "read", "read_rate", "PQH_READ_RATE"


class AddressRateThrottle(RateThrottle):
    """Anonymous requests per client address (PQH_ANON_RATE); failed tokens count here too."""

    scope = "anon"
    noun = "anonymous requests and failed logins from your address"

    def ident(self, request):
        user = request.user
        if user is not None and user.is_authenticated:
            return None
        return client_address(request)

    def rate_text(self, request):
        return settings.PQH_ANON_RATE


def address_failure_wait(request) -> float:
    """Count a failed token lookup against the request's address; return the wait, 0.0 if none.

    Called while DRF authenticates, so it must not touch `request.user`.
    """
    rate = _parsed(settings.PQH_ANON_RATE)
    if rate is None:
        return 0.0
    wait = _take(AddressRateThrottle.scope, client_address(request), rate, None)
    if wait > 0:
        _refuse(
            request,
            scope=AddressRateThrottle.scope,
            noun=AddressRateThrottle.noun,
            rate=rate,
            wait=wait,
            username="",
        )
    return wait
