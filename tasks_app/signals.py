"""A weight or team change reaches the tasks already queued, not only the next submission."""

from django.db.models.signals import post_save, pre_delete

from users_app.models import Profile, Team

from .services.actions import task_reweight_backlog, task_reweight_team_backlog


def _weight_saved(sender, instance: Profile, created: bool = False, raw: bool = False, **kwargs):
    if not created and not raw:
        team = instance.team
        task_reweight_backlog(
            user_id=instance.user_id,
            weight=instance.weight,
            team=team.queue_key if team is not None else "",
            team_weight=team.weight if team is not None else 1,
        )


def _team_saved(sender, instance: Team, created: bool = False, raw: bool = False, **kwargs):
    if not created and not raw:
        task_reweight_team_backlog(team=instance.queue_key, weight=instance.weight)


def _team_deleted(sender, instance: Team, **kwargs):
    # Its members become teams of their own (the foreign key is set to NULL in SQL, without
    # saving their rows): their waiting tasks leave the team after the commit.
    for user_id, weight in instance.members.values_list("user_id", "weight"):
        task_reweight_backlog(user_id=user_id, weight=weight, team="")


def connect_weight_signals() -> None:
    """Respace a user's waiting tasks on every saved weight row (admin, set_weight, API), and a
    team's on every saved team (admin, `manage.py team`)."""
    post_save.connect(_weight_saved, sender=Profile, dispatch_uid="pqh-reweight-backlog")
    post_save.connect(_team_saved, sender=Team, dispatch_uid="pqh-reweight-team-backlog")
    pre_delete.connect(_team_deleted, sender=Team, dispatch_uid="pqh-team-deleted")
