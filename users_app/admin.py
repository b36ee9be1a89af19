"""Admin for weights: on each user's page, as one editable list, and a reset of users' windows;
and teams, with their weight and members."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from pqh_site.core import core

from .models import Profile, Team
from .selectors import user_window

# A user's fairness settings: the weight, the cap of tasks queued or running and the request
# rates at the door (empty: the defaults, PQH_USER_MAX_ACTIVE, PQH_SUBMIT_RATE, PQH_READ_RATE).
# They show in the user's page, as editable columns of the weights list and on the weight's page.
PROFILE_SETTINGS = ["weight", "team", "max_active", "submit_rate", "read_rate"]


def reset_windows(modeladmin, request, users) -> None:
    """Forget the window of each user; their next submission counts as their first."""
    windows = core().windows
    forgotten = {user.get_username(): windows.reset(user_id=user.pk) for user in users}
    modeladmin.message_user(
        request,
        f"Reset the windows of {len(forgotten)} user(s), forgetting "
        f"{sum(forgotten.values())} submission(s): "
        + ", ".join(f"{name} ({n})" for name, n in sorted(forgotten.items())),
        messages.SUCCESS,
    )


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = PROFILE_SETTINGS
    verbose_name_plural = "fairness settings"


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["username", *PROFILE_SETTINGS, "tasks"]
    list_display_links = ["username"]
    # The team is shown, not edited, in the list: a choice of team per row would read the teams
    # once per row (the team's page edits its members).
    list_editable = [name for name in PROFILE_SETTINGS if name != "team"]
    list_select_related = ["user", "team"]
    search_fields = ["user__username"]
    search_help_text = "Part of a user name."
    ordering = ["user__username"]
    list_per_page = 100
    actions = ["reset_window"]
    fieldsets = [
        (None, {"fields": ["user"]}),
        ("Fairness settings", {"fields": PROFILE_SETTINGS}),
        ("Now", {"fields": ["window", "tasks"]}),
    ]
    readonly_fields = ["user", "window", "tasks"]

    def has_add_permission(self, request) -> bool:
        # A weight row is created with its user; add users on the user page.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # It goes with its user; delete the user instead.
        return False

    @admin.display(description="user", ordering="user__username")
    def username(self, obj: Profile) -> str:
        return obj.user.get_username()

    @admin.display(description="window")
    def window(self, obj: Profile) -> str:
        # One user's page: one Redis round trip. Lists never show this column.
        usage = user_window(obj.user)
        charged = f"; {usage.usage:.1f} s charged" if usage.unit == "seconds" else ""
        back = (
            f"; back at level 0 at {usage.level0_at:%Y-%m-%d %H:%M:%S} UTC if idle"
            if usage.level0_at
            else ""
        )
        return (
            f"{usage.count} submission(s) in the last {usage.window_seconds} s{charged}; "
            f"the next task gets level {usage.next_level}{back}"
        )

    @admin.display(description="tasks")
    def tasks(self, obj: Profile) -> str:
        url = reverse("admin:tasks_app_taskrecord_changelist")
        name = obj.user.get_username()
        return format_html('<a href="{}?user={}">history of {}</a>', url, name, name)

    @admin.action(description="Reset the window of selected users", permissions=["change"])
    def reset_window(self, request, queryset) -> None:
        reset_windows(self, request, [profile.user for profile in queryset.select_related("user")])


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [ProfileInline]
    list_display = [*BaseUserAdmin.list_display, "weight", "team"]
    list_select_related = ["profile__team"]
    actions = ["reset_window"]

    @admin.display(description="weight", ordering="profile__weight")
    def weight(self, obj) -> int:
        return getattr(getattr(obj, "profile", None), "weight", 1)

    @admin.display(description="team", ordering="profile__team__name")
    def team(self, obj) -> str:
        team = getattr(getattr(obj, "profile", None), "team", None)
        return "-" if team is None else f"{team.name} (weight {team.weight})"

    @admin.action(description="Reset the window of selected users", permissions=["change"])
    def reset_window(self, request, queryset) -> None:
        reset_windows(self, request, list(queryset))


class TeamForm(forms.ModelForm):
    """A team, and its members chosen among the users (a user is in at most one team)."""

    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
        help_text="A user added here leaves its other team; its waiting tasks follow.",
    )

    class Meta:
        model = Team
        fields = ["name", "weight"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = User.objects.filter(profile__team=self.instance)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamForm
    list_display = ["name", "weight", "member_count"]
    list_editable = ["weight"]
    search_fields = ["name"]
    ordering = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: Team) -> int:
        return obj.member_count

    @transaction.atomic
    def save_model(self, request, obj: Team, form, change) -> None:
        super().save_model(request, obj, form, change)
        chosen = {user.pk for user in form.cleaned_data.get("members", [])}
        # Each row saved on its own, so that its waiting tasks follow (tasks_app/signals.py).
        for profile in Profile.objects.filter(team=obj).exclude(user_id__in=chosen):
            profile.team = None
            profile.save(update_fields=["team"])
        for user_id in chosen:
            profile, _ = Profile.objects.get_or_create(user_id=user_id)
            if profile.team_id != obj.pk:
                profile.team = obj
                profile.save(update_fields=["team"])
