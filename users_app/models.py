"""The weight each user carries in the fairness policy."""

from django.conf import settings
from django.db import models


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
            "this user's share of the service among users contending at the same level. "
            "Applies to the next submission."
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
