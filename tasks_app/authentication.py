"""Token authentication that remembers each token's user and weight, checked against Redis."""

import copy
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from users_app.models import Profile

from .redis_client import get_redis, key

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
    token: Token
    loaded: float


_entries: dict[str, _Entry] = {}
_lock = threading.Lock()


@cache
def _client(url: str) -> redis.Redis:
    # Its own pool, without the shared client's retries: if Redis is down, a request falls back
    # to PostgreSQL at once instead of waiting out the backoff.
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=0.25,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


def version_redis() -> redis.Redis:
    """Return the client that reads credential versions on the request path."""
    return _client(settings.REDIS_URL)


def auth_version_key(user_id: int) -> str:
    return key("authv", user_id)


def auth_cache_invalidate(*, user_id: int) -> None:
    """Make every process load this user again on its next request.

    Called for every save or delete of a user, its weight row or its token; a write that
    bypasses signals (QuerySet.update) on these rows must call it itself. The version is
    replaced now and again after the commit: a request that loads the user in between still
    sees the old row, and the second replacement makes sure it is not kept.
    """

    def bump() -> None:
        try:
            get_redis().set(auth_version_key(user_id), uuid.uuid4().hex)
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
    """Forget every remembered token of this process (tests)."""
    with _lock:
        _entries.clear()


def _remember(token_key: str, entry: _Entry) -> None:
    limit = settings.PQH_AUTH_CACHE_SIZE
    with _lock:
        while len(_entries) >= limit:
            _entries.pop(next(iter(_entries)))  # the oldest first
        _entries[token_key] = entry


class ProfileTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the token's user and weight remembered per process."""

    def authenticate_credentials(self, key):
        """Return (user, token) for a valid key, with user.profile already loaded."""
        if settings.PQH_AUTH_CACHE_SIZE <= 0:
            return self._load(key)
        entry = _entries.get(key)
        if entry is not None and time.monotonic() - entry.loaded > settings.PQH_AUTH_CACHE_SECONDS:
            entry = None
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
                # Create the version if missing (SET NX), else read it: before the load.
                user_id = self._user_id(key)
                if user_id is None:
                    raise exceptions.AuthenticationFailed(_("Invalid token."))
                fresh = uuid.uuid4().hex
                old = version_redis().set(auth_version_key(user_id), fresh, nx=True, get=True)
                version = old if old is not None else fresh
        except redis.RedisError:
            return self._load(key)
        try:
            user, token = self._load(key)
        except exceptions.AuthenticationFailed:
            _entries.pop(key, None)
            raise
        if version is not None:
            entry = _Entry(
                version=version, user=copy.copy(user), token=token, loaded=time.monotonic()
            )
            _remember(key, entry)
        return (user, token)

    @staticmethod
    def _user_id(key: str) -> int | None:
        return Token.objects.filter(key=key).values_list("user_id", flat=True).first()

    @staticmethod
    def _load(key: str):
        try:
            token = Token.objects.select_related("user__profile").get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)


def _user_changed(sender, instance, **kwargs) -> None:
    auth_cache_invalidate(user_id=instance.pk)


def _owner_changed(sender, instance, **kwargs) -> None:
    auth_cache_invalidate(user_id=instance.user_id)


def connect_signals() -> None:
    """Invalidate on every save or delete of a user, a weight row or a token (from ready())."""
    User = get_user_model()
    for signal in (post_save, post_delete):
        signal.connect(_user_changed, sender=User, dispatch_uid=f"pqh-auth-user-{signal}")
        signal.connect(_owner_changed, sender=Profile, dispatch_uid=f"pqh-auth-profile-{signal}")
        signal.connect(_owner_changed, sender=Token, dispatch_uid=f"pqh-auth-token-{signal}")
