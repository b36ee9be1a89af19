"""The weight each user carries in the fairness policy."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from fairqueue.rates import parse_rate


def validate_rate(value: str) -> None:
    """A request rate: "N/s", "N/m", "N/h" or "N/d" (or "off")."""
    try:
        parse_rate(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


TEAM_NAME_RULE = "1 to 64 letters, digits and _ . - (no spaces)"


class Team(models.Model):
    """Users who share one weight: within a level the fair queue first shares the service among
    teams (and users in no team) by weight, then a team's share among its members by theirs."""

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9_.-]+$", f"A team name is {TEAM_NAME_RULE}.")],
        verbose_name="name",
    )
    weight = models.PositiveIntegerField(
        default=1,
        verbose_name="weight",
        help_text=(
            "This team's share of the service among the teams (and users in no team) "
            "contending at the same level. Applies to the next submission and to its members' "
            "tasks already waiting."
        ),
    )

    class Meta:
        verbose_name = "team"
        verbose_name_plural = "teams"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="team_weight_positive")
        ]

    def __str__(self) -> str:
        return f"{self.name} (weight {self.weight})"

    @property
    def queue_key(self) -> str:
        """The team's name in the fair queue (its id: a rename moves nothing)."""
        return str(self.pk)


class Profile(models.Model):
    """A user's fairness settings; one row per user, created with the user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="profile",
        verbose_name="user",
    )
    weight = models.PositiveIntegerField(
        default=1,
        verbose_name="weight",
        help_text=(
            "How many tasks of this user count as one when choosing the priority level, and "
            "this user's share of the service among users contending at the same level (in a "
            "team: its share of its team's). "
            "Applies to the next submission and to the user's tasks already waiting."
        ),
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
        verbose_name="team",
        help_text=(
            "The team this user shares with (at most one); empty: the user shares as a team of "
            "its own. Applies to the next submission and to the user's tasks already waiting."
        ),
    )

    max_active = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="max active",
        help_text=(
            "How many tasks this user may have queued or running at once; empty for the "
            "default (PQH_USER_MAX_ACTIVE). Applies to the next submission."
        ),
    )

    submit_rate = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",  # also in the table, so processes of the previous version can still insert
        validators=[validate_rate],
        verbose_name="submit rate",
        help_text=(
            "How fast this user may submit and cancel, as N/s, N/m, N/h or N/d (a bucket of N "
            "requests refilled at N per period), or off; empty for the default "
            "(PQH_SUBMIT_RATE). Applies to the next request."
        ),
    )
    read_rate = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",  # also in the table, so processes of the previous version can still insert
        validators=[validate_rate],
        verbose_name="read rate",
        help_text=(
            "How fast this user may read (poll results, list tasks, usage), as N/s, N/m, N/h "
            "or N/d, or off; empty for the default (PQH_READ_RATE). Applies to the next request."
        ),
    )

    class Meta:
        verbose_name = "weight"
        verbose_name_plural = "weights"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__gte=1), name="profile_weight_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(max_active__isnull=True) | models.Q(max_active__gte=1),
                name="profile_max_active_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} (weight {self.weight})"
