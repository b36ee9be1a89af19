"""Writes on users and their weights."""

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from .models import Profile


class UserError(ValueError):
    """A request about a user that cannot be carried out; the message says why."""


def user_set_weight(*, username: str, weight: int) -> Profile:
    """Set the weight of an existing user; it applies to that user's next submission."""
    if weight < 1:
        raise UserError(f"weight must be at least 1, got {weight}")
    User = get_user_model()
    try:
        user = User.objects.get(username=username)
    except User.DoesNotExist:
        raise UserError(f"no user named {username!r}") from None
    profile, _ = Profile.objects.update_or_create(user=user, defaults={"weight": weight})
    return profile


@transaction.atomic
def api_user_create(
    *, username: str, weight: int | None = None, password: str | None = None
) -> tuple[object, Token, bool]:
    """Create the user if missing, set its weight if given, and return (user, token, created)."""
    if weight is not None and weight < 1:
        raise UserError(f"weight must be at least 1, got {weight}")
    if not username or len(username) > 150:
        raise UserError("username must be 1 to 150 characters")
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if password is not None:
        user.set_password(password)
        user.save(update_fields=["password"])
    elif created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    # Through the user, so `user.profile` is the row this function saves, never a stale copy
    # (a new user's post_save signal has already created and cached one).
    try:
        profile = user.profile
    except Profile.DoesNotExist:
        profile = Profile.objects.create(user=user)
    if weight is not None and profile.weight != weight:
        profile.weight = weight
        profile.save(update_fields=["weight"])
    token, _ = Token.objects.get_or_create(user=user)
    return user, token, created
