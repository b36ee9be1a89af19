"""Admin for weights: on each user's page, and as one list where many can be edited at once."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Profile


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ["weight", "max_active"]
    verbose_name_plural = "weight and cap"


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "weight", "max_active"]
    list_editable = ["weight", "max_active"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    ordering = ["user__username"]
    list_per_page = 100

    def has_add_permission(self, request) -> bool:
        # A weight row is created with its user; add users on the user page.
        return False


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [ProfileInline]
    list_display = [*BaseUserAdmin.list_display, "weight"]
    list_select_related = ["profile"]

    @admin.display(description="weight", ordering="profile__weight")
    def weight(self, obj) -> int:
        return getattr(getattr(obj, "profile", None), "weight", 1)
