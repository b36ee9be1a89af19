"""Who is asking: tokens and basic credentials remembered per process, checked against Redis."""

import copy
import hmac
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from django.utils.translation import gettext_lazy as _
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token

from fairqueue.core import redis_client
from pqh_site import door
from pqh_site.client_address import client_address
from pqh_site.core import core

from .lockout import forget_failures
from .models import Profile, Team
from .throttling import address_failure_wait

logger = logging.getLogger(__name__)

# Each web process keeps, per token, the user (with its weight row) it last loaded, and the
# version of that user it was loaded at. The version lives in Redis (one key per user, a random
# value) and is replaced after every committed change to the user, its weight or its token. A
# request reads the version (one GET) instead of joining three tables in PostgreSQL; if it
# differs from the remembered one, the process loads the user again. So a weight edited in the
# admin or with set_weight, a deactivated user or a deleted token applies to the very next
# request, in every process. The version is read before the user is loaded, so a load that
# races a change is remembered under the old version and loaded again on the next request.
# A missing version (a new user, or Redis lost its keys) never matches: it is created, and the
# user loaded from PostgreSQL. An entry older than PQH_AUTH_CACHE_SECONDS is loaded again
# whatever its version: it bounds how long a change whose version could not be written (Redis
# unreachable from the writer only) goes unseen.


@dataclass(frozen=True)
class _Entry:
    version: str
    user: object
    token: Token | None
    loaded: float


# Token keys (str) and digests of basic credentials (bytes) share one bounded table.
_entries: dict[str | bytes, _Entry] = {}
_lock = threading.Lock()
# Basic credentials are remembered by an HMAC under a key of this process's own, never written
# anywhere: the table holds no password, and no digest that could be checked outside it.
_BASIC_KEY = os.urandom(32)


@cache
def _client(url: str) -> redis.Redis:
    # Its own pool, without the shared client's retries: if Redis is down, a request falls back
    # to PostgreSQL at once instead of waiting out the backoff.
    return redis_client(
        url,
        cluster=settings.PQH_REDIS_CLUSTER,
        socket_connect_timeout=0.25,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )


def version_redis() -> redis.Redis:
    """Return the client that reads credential versions on the request path."""
    return _client(settings.REDIS_URL)


def auth_version_key(user_id: int) -> str:
    return core().keys.key("authv", user_id)


def auth_cache_invalidate(*, user_id: int) -> None:
    """Make every process load this user again on its next request.

    Called for every save or delete of a user, its weight row or its token; a write that
    bypasses signals (QuerySet.update) on these rows must call it itself. The version is
    replaced now and again after the commit: a request that loads the user in between still
    sees the old row, and the second replacement makes sure it is not kept.
    """

    def bump() -> None:
        try:
            core().redis.set(auth_version_key(user_id), uuid.uuid4().hex)
        except redis.RedisError as exc:
            logger.warning(
                "could not invalidate the cached credentials of user %s (%s); web processes "
                "may use them for up to PQH_AUTH_CACHE_SECONDS",
                user_id,
                exc,
            )

    bump()
    transaction.on_commit(bump)


def auth_cache_clear() -> None:
    """Forget every remembered credential of this process (tests)."""
    with _lock:
        _entries.clear()


def _remember(entry_key: str | bytes, entry: _Entry) -> None:
    limit = settings.PQH_AUTH_CACHE_SIZE
    with _lock:
        while len(_entries) >= limit:
            _entries.pop(next(iter(_entries)))  # the oldest first
        _entries[entry_key] = entry


def _fresh(entry_key: str | bytes) -> _Entry | None:
    """The entry remembered under `entry_key`, if it is not older than PQH_AUTH_CACHE_SECONDS."""
    entry = _entries.get(entry_key)
    if entry is not None and time.monotonic() - entry.loaded > settings.PQH_AUTH_CACHE_SECONDS:
        return None
    return entry


def _version_now(user_id: int) -> str:
    """Read the user's credential version, creating it if missing (SET NX): before a load."""
    fresh = uuid.uuid4().hex
    old = version_redis().set(auth_version_key(user_id), fresh, nx=True, get=True)
    return old if old is not None else fresh


class ProfileTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the token's user and weight remembered per process.

    A token that matches no user is a failed login: counted and logged, and counted against
    the client address's rate (PQH_ANON_RATE), so guessing tokens is refused with 429 too.
    """

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            door.event_login_failed(
                method="token", username="", address=client_address(request), path=request.path
            )
            wait = address_failure_wait(request)
            if wait > 0:
                raise exceptions.Throttled(wait) from None
            raise

    def authenticate_credentials(self, key):
        """Return (user, token) for a valid key, with user.profile already loaded."""
        if settings.PQH_AUTH_CACHE_SIZE <= 0:
            return self._load(key)
        entry = _fresh(key)
        try:
            if entry is not None:
                current = version_redis().get(auth_version_key(entry.token.user_id))
                if current == entry.version:
                    # A copy, so nothing a request does to its user leaks into the next one.
                    return (copy.copy(entry.user), entry.token)
                version = current
            else:
                version = None
            if version is None:
                user_id = self._user_id(key)
                if user_id is None:
                    raise exceptions.AuthenticationFailed(_("Invalid token."))
                version = _version_now(user_id)
        except redis.RedisError:
            return self._load(key)
        try:
            user, token = self._load(key)
        except exceptions.AuthenticationFailed:
            _entries.pop(key, None)
            raise
        entry = _Entry(version=version, user=copy.copy(user), token=token, loaded=time.monotonic())
        _remember(key, entry)
        return (user, token)

    @staticmethod
    def _user_id(key: str) -> int | None:
        return Token.objects.filter(key=key).values_list("user_id", flat=True).first()

    @staticmethod
    def _load(key: str):
        try:
            token = Token.objects.select_related("user__profile__team").get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)


class RememberedBasicAuthentication(BasicAuthentication):
    """HTTP basic on the API (on only with PQH_BASIC_AUTH=1), without a hash per request.

    The first request with a user name and password checks them through Django's
    authenticate(), where django-axes refuses a locked-out address before any hash is computed
    and counts a wrong password (users_app/lockout.py). A match is remembered in this process
    under an HMAC of the pair (keyed by a secret of the process), with the user's credential
    version as the token cache keeps it: the next request with the same pair costs one Redis
    GET instead of a password hash, and a changed password, a deactivated user or a changed
    weight (each a new version) sends it through authenticate() again.
    """

    def authenticate_credentials(self, userid, password, request=None):
        digest = hmac.digest(_BASIC_KEY, f"{userid}\0{password}".encode(), "sha256")
        remembered = settings.PQH_AUTH_CACHE_SIZE > 0
        entry = _fresh(digest) if remembered else None
        if entry is not None:
            try:
                if version_redis().get(auth_version_key(entry.user.pk)) == entry.version:
                    return (copy.copy(entry.user), None)
            except redis.RedisError:
                pass
            _entries.pop(digest, None)
        http_request = getattr(request, "_request", request)  # axes marks Django's request
        user = authenticate(request=http_request, username=userid, password=password)
        if user is None or not user.is_active:
            # A lockout (axes refused before hashing) is answered by axes' middleware with the
            # 429 of users_app.lockout; a wrong password is a 401.
            raise exceptions.AuthenticationFailed(_("Invalid username/password."))
        # Basic sends no user_logged_in: forget this user name's failures at this address here.
        forget_failures(username=user.get_username(), address=client_address(request))
        profile_loaded(user)
        if remembered:
            try:
                version = _version_now(user.pk)
            except redis.RedisError:
                return (user, None)
            # The version is read before this check: a change committed after it gets a new
            # version (so the entry is not used), and one committed before it fails it.
            if get_user_model().objects.filter(pk=user.pk, password=user.password).exists():
                entry = _Entry(
                    version=version, user=copy.copy(user), token=None, loaded=time.monotonic()
                )
                _remember(digest, entry)
        return (user, None)


def profile_loaded(user) -> None:
    """Load the user's weight row now (it is read on every request: weight, cap, rates, team)."""
    try:
        user.profile.team  # noqa: B018
    except Profile.DoesNotExist:
        pass


def _user_changed(sender, instance, **kwargs) -> None:
    auth_cache_invalidate(user_id=instance.pk)


def _owner_changed(sender, instance, **kwargs) -> None:
    auth_cache_invalidate(user_id=instance.user_id)


def _team_changed(sender, instance, **kwargs) -> None:
    # Its members' loaded rows carry the team (its weight): load them again.
    for user_id in instance.members.values_list("user_id", flat=True):
        auth_cache_invalidate(user_id=user_id)


def connect_signals() -> None:
    """Invalidate on every save or delete of a user, a weight row, a token or a team (its
    members) (from ready())."""
    User = get_user_model()
    for signal in (post_save, post_delete):
        signal.connect(_user_changed, sender=User, dispatch_uid=f"pqh-auth-user-{signal}")
        signal.connect(_owner_changed, sender=Profile, dispatch_uid=f"pqh-auth-profile-{signal}")
        signal.connect(_owner_changed, sender=Token, dispatch_uid=f"pqh-auth-token-{signal}")
    post_save.connect(_team_changed, sender=Team, dispatch_uid="pqh-auth-team-saved")
    pre_delete.connect(_team_changed, sender=Team, dispatch_uid="pqh-auth-team-deleted")
