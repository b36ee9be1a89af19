"""Give every new user a weight row, so the admin can list and edit all weights."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Profile


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """Create the weight row of a newly created user."""
    if created and not raw:
        Profile.objects.get_or_create(user=instance)
