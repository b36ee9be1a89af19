"""Writes on users and their weights."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from .models import TEAM_NAME_RULE, Profile, Team


class UserError(ValueError):
    """A request about a user that cannot be carried out; the message says why."""


class NoSuchUser(UserError):
    """No user has this name."""

    def __init__(self, username: str):
        super().__init__(f"no user named {username!r}")
        self.username = username


class BadUsername(UserError):
    """A user name that breaks the rule of user names (Django's, which the admin applies too)."""


# Django's own rule for user names (UnicodeUsernameValidator, which the admin applies): letters,
# digits and @ . + - _, so no space, no control character (a name is shown in log lines, the
# admin and command output).
USERNAME_RULE = "1 to 150 letters, digits and @ . + - _ (no spaces or control characters)"


def username_problem(username: str) -> str | None:
    """Return why `username` cannot be a user's name, or None if it can."""
    User = get_user_model()
    limit = User._meta.get_field(User.USERNAME_FIELD).max_length
    try:
        if not username or len(username) > limit:
            raise ValidationError("length")
        User.username_validator(username)
    except ValidationError:
        return f"the user name {username!r} is not allowed: a user name is {USERNAME_RULE}"
    return None


# The largest weight the column holds (PostgreSQL's integer).
MAX_WEIGHT = 2_147_483_647


def _check_weight(weight: int) -> None:
    if not 1 <= weight <= MAX_WEIGHT:
        raise UserError(f"weight must be from 1 to {MAX_WEIGHT}, got {weight}")


def user_set_weight(*, username: str, weight: int) -> Profile:
    """Set the weight of an existing user; it applies to that user's next submission."""
    _check_weight(weight)
    User = get_user_model()
    try:
        user = User.objects.get(username=username)
    except User.DoesNotExist:
        raise NoSuchUser(username) from None
    profile, _ = Profile.objects.update_or_create(user=user, defaults={"weight": weight})
    return profile


@transaction.atomic
def api_user_create(
    *, username: str, weight: int | None = None, password: str | None = None
) -> tuple[object, Token, bool]:
    """Create the user if missing, set its weight if given, and return (user, token, created).

    A name that breaks Django's rule of user names (USERNAME_RULE) is refused (BadUsername).
    """
    if weight is not None:
        _check_weight(weight)
    problem = username_problem(username)
    if problem:
        raise BadUsername(problem)
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


class NoSuchTeam(UserError):
    """No team has this name."""

    def __init__(self, name: str):
        super().__init__(f"no team named {name!r}")
        self.name = name


def _check_team_name(name: str) -> None:
    field = Team._meta.get_field("name")
    try:
        field.run_validators(name)
        if not name or len(name) > field.max_length:
            raise ValidationError("length")
    except ValidationError:
        problem = f"the team name {name!r} is not allowed: a team name is {TEAM_NAME_RULE}"
        raise UserError(problem) from None


def _team(name: str) -> Team:
    try:
        return Team.objects.get(name=name)
    except Team.DoesNotExist:
        raise NoSuchTeam(name) from None


def _profiles(usernames: list[str]) -> list[Profile]:
    """The weight rows of these users (created if missing), or NoSuchUser for the first unknown."""
    User = get_user_model()
    users = {u.get_username(): u for u in User.objects.filter(username__in=usernames)}
    for name in usernames:
        if name not in users:
            raise NoSuchUser(name)
    return [Profile.objects.get_or_create(user=users[name])[0] for name in usernames]


def team_create(*, name: str, weight: int) -> Team:
    """Create a team; UserError if the name is taken or not allowed."""
    _check_team_name(name)
    _check_weight(weight)
    if Team.objects.filter(name=name).exists():
        raise UserError(f"a team named {name!r} exists already")
    return Team.objects.create(name=name, weight=weight)


@transaction.atomic
def team_add(*, name: str, usernames: list[str]) -> Team:
    """Put users in a team (leaving any other team); their waiting tasks follow after commit."""
    team = _team(name)
    for profile in _profiles(usernames):
        if profile.team_id != team.pk:
            profile.team = team
            profile.save(update_fields=["team"])
    return team


@transaction.atomic
def team_remove(*, usernames: list[str]) -> list[str]:
    """Take users out of their teams; return the names of those who were in one."""
    removed = []
    for profile in _profiles(usernames):
        if profile.team_id is not None:
            profile.team = None
            profile.save(update_fields=["team"])
            removed.append(profile.user.get_username())
    return removed


def team_set_weight(*, name: str, weight: int) -> Team:
    """Set a team's weight; its members' waiting tasks follow after commit."""
    _check_weight(weight)
    team = _team(name)
    team.weight = weight
    team.save(update_fields=["weight"])
    return team
