"""Failed logins lock a client address out: django-axes on every path that checks a password.

Django's authenticate() is the one place a password is checked: HTTP basic on the API
(users_app.authentication), the browsable API's login and the admin's login all call it. With
axes' backend first in AUTHENTICATION_BACKENDS, an address with PQH_LOGIN_FAILURE_LIMIT failed
logins within PQH_LOGIN_COOLOFF_SECONDS is refused before any password is hashed: the API answers
429 with Retry-After and a JSON body, the login forms the admin's page saying so, also with 429.
The count is per client address (pqh_site.client_address: X-Forwarded-For only from a trusted
proxy), over every user name tried from it, so guesses from one address never lock out the
real user at another. A successful login forgets the failures of that user name at that
address (not the address's others: one account of an attacker's must not reset its guesses
at another's). Attempts live in PostgreSQL (axes' AccessAttempt): the admin lists them under
"Axes", and `manage.py lockouts` lists and clears lockouts.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Max, Sum
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from pqh_site import door
from pqh_site.client_address import client_address
from pqh_site.errors import API_PATH, refusal_body, wants_json

LOCKED_OUT = "locked_out"


class LockoutBackend(AxesStandaloneBackend):
    """axes' backend, marking a request it refused so the failure it causes is not counted as a
    password checked (it was not: nothing was hashed).

    A check with no request (Django's test client's login(), code of an operator's) has no
    client address to count against: it is let through to the password check. Every path a
    client reaches passes its request: DRF's basic authentication, the login views.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            request.pqh_refused_unchecked = True
            raise


def cooloff() -> timedelta:
    return timedelta(seconds=settings.PQH_LOGIN_COOLOFF_SECONDS)


def locked_until(address: str, *, now: datetime | None = None) -> datetime | None:
    """When the address's lockout ends, or None if it is not locked out now (one query)."""
    now = timezone.now() if now is None else now
    row = AccessAttempt.objects.filter(
        ip_address=address, attempt_time__gte=now - cooloff()
    ).aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
    if not row["failures"] or row["failures"] < settings.PQH_LOGIN_FAILURE_LIMIT:
        return None
    return row["last"] + cooloff()


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the answer to a password check refused (or failed) into a lockout.

    JSON for the API and any client that does not prefer HTML; the login page's look for a
    browser at the admin or the browsable API's login. Both 429 with Retry-After.
    """
    address = client_address(request)
    until = locked_until(address)
    left = (until - timezone.now()).total_seconds() if until else cooloff().total_seconds()
    retry_after = max(1, math.ceil(left))
    detail = (
        f"too many failed logins from your address: password logins from it are refused for "
        f"{retry_after} s; a token still works"
    )
    username = (credentials or {}).get("username") or ""
    door.event_door_refused(
        reason=LOCKED_OUT, username=username, address=address, path=request.path, retry_after=left
    )
    if API_PATH.match(request.path_info):
        # The gate repeats it for every password login from the address, of either kind.
        door.remember_refusal(
            request.META,
            reason=LOCKED_OUT,
            detail=detail,
            code=LOCKED_OUT,
            retry_after=left,
            kinds=("read", "write"),
            any_password=True,
        )
    if wants_json(request):
        response = JsonResponse(refusal_body(detail=detail, code=LOCKED_OUT), status=429)
    else:
        # Rendered now: axes' middleware returns it after the view, past the template step.
        response = render(
            request,
            "admin/pqh/locked_out.html",
            {"title": "Too many failed logins", "detail": detail, "retry_after": retry_after},
            status=429,
        )
    response["Retry-After"] = str(retry_after)
    return response


def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    if request is None or getattr(request, "pqh_refused_unchecked", False):
        return  # refused by the lockout before any check: counted as a refusal, not a failure
    method = "basic" if API_PATH.match(request.path_info) else "form"
    door.event_login_failed(
        method=method,
        username=str(credentials.get("username") or "")[:150],
        address=client_address(request),
        path=request.path,
    )


def forget_failures(*, username: str, address: str) -> int:
    """Forget the failed logins of `username` at `address` (a success there); return how many."""
    return AccessAttempt.objects.filter(username=username, ip_address=address).delete()[0]


def _logged_in(sender, request, user, **kwargs) -> None:
    if request is not None:
        forget_failures(username=user.get_username(), address=client_address(request))


def connect_signals() -> None:
    """Count and log failed logins, and let a login forget its own failures (from ready())."""
    user_login_failed.connect(_login_failed, dispatch_uid="pqh-login-failed")
    user_logged_in.connect(_logged_in, dispatch_uid="pqh-login-succeeded")


@dataclass(frozen=True)
class Lockout:
    """An address locked out now: its failed logins in the cool-off, the names tried, until."""

    address: str
    failures: int
    usernames: list[str]
    until: datetime


def lockouts_now(*, now: datetime | None = None) -> list[Lockout]:
    """Every address locked out now, the longest-locked last (one grouped query)."""
    now = timezone.now() if now is None else now
    recent = AccessAttempt.objects.filter(attempt_time__gte=now - cooloff())
    rows = (
        recent.order_by()
        .values("ip_address")
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        .filter(failures__gte=settings.PQH_LOGIN_FAILURE_LIMIT)
    )
    names: dict[str, set[str]] = {}
    for address, name in recent.values_list("ip_address", "username"):
        names.setdefault(address, set()).add(name or "")
    found = [
        Lockout(
            address=row["ip_address"],
            failures=row["failures"],
            usernames=sorted(names.get(row["ip_address"], ())),
            until=row["last"] + cooloff(),
        )
        for row in rows
    ]
    return sorted(found, key=lambda lockout: (lockout.until, lockout.address))


def lockout_clear(*, address: str | None = None, username: str | None = None) -> int:
    """Forget failed logins (of an address, a user name, both, or all); return how many rows.

    Each web process may still repeat a refusal it made for up to pqh_site.door.REPLAY_SECONDS.
    """
    attempts = AccessAttempt.objects.all()
    if address:
        attempts = attempts.filter(ip_address=address)
    if username:
        attempts = attempts.filter(username=username)
    return attempts.delete()[0]
