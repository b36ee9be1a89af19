"""A weight change reaches the tasks already queued, not only the next submission."""

from django.db.models.signals import post_save

from users_app.models import Profile

from .services.actions import task_reweight_backlog


def _weight_saved(sender, instance: Profile, created: bool = False, raw: bool = False, **kwargs):
    if not created and not raw:
        task_reweight_backlog(user_id=instance.user_id, weight=instance.weight)


def connect_weight_signals() -> None:
    """Respace a user's waiting tasks on every saved weight row (admin, set_weight, API)."""
    post_save.connect(_weight_saved, sender=Profile, dispatch_uid="pqh-reweight-backlog")
