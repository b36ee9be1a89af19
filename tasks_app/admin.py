"""Admin: the task history, with sortable waits and run times, filters, and a cancel action."""

from datetime import timedelta

from celery import states
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Case, DurationField, F, Q, TextField, When
from django.db.models.functions import Cast, Coalesce, Now

from fairqueue.policy import usage_per_weight

from .models import TaskRecord
from .selectors.places import task_place, task_places
from .selectors.why import task_priority
from .services.actions import task_cancel_many


def duration_text(value: timedelta | float | None) -> str:
    """Show a duration as an operator reads it: 4.2 s, 3 min 05 s, 2 h 07 min."""
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class LevelFilter(admin.SimpleListFilter):
    """Tasks of one level; the levels come from the settings, so listing them costs no query."""

    title = "level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [(str(level), f"level {level}") for level in range(settings.PQH_LEVELS)]

    def queryset(self, request, queryset):
        if self.value() is not None and self.value().isdigit():
            return queryset.filter(level=int(self.value()))
        return queryset


class UserNameFilter(admin.SimpleListFilter):
    """Tasks of one user, by name; offers the users with tasks queued or running now."""

    title = "user (queued or running now)"
    parameter_name = "user"

    def lookups(self, request, model_admin):
        # Bounded: users with live tasks, found through the (status, level, submitted_at) index.
        names = list(
            TaskRecord.objects.filter(status__in=[states.PENDING, states.STARTED])
            .order_by("user__username")
            .values_list("user__username", flat=True)
            .distinct()[:50]
        )
        if self.value() and self.value() not in names:
            names.append(self.value())
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(user__username=self.value())
        return queryset


class TaskChangeList(ChangeList):
    """The history list: queue places of a whole page come from one batched query."""

    def get_results(self, request):
        super().get_results(request)
        places = task_places(self.result_list)
        for record in self.result_list:
            record.queue_place = places.get(record.pk)


def _place(obj: TaskRecord):
    """The task's place in the fair queue: batched for a list page, read once for a detail."""
    if not hasattr(obj, "queue_place"):
        obj.queue_place = task_place(obj)
    return obj.queue_place


def usage_text(value: float, charge: str) -> str:
    """Show a window usage in its unit: "7 tasks", or "412.0 s" of service."""
    if charge == "time":
        return f"{value:.1f} s"
    return f"{int(value)} task{'' if int(value) == 1 else 's'}"


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    list_display = [
        "task_id",
        "user",
        "level",
        "status",
        "weight",
        "usage",
        "aged_now",
        "submitted_at",
        "wait",
        "run_time",
        "cost_text",
        "run_seconds_text",
        "position",
    ]
    # A date filter, not date_hierarchy: the hierarchy lists the distinct days of the whole
    # history, a scan that grows with it; the filter's choices cost no query.
    list_filter = ["status", LevelFilter, "aged", "charge", UserNameFilter, "submitted_at"]
    search_fields = ["task_id"]
    search_help_text = "A user name (exact), or part of a task id."
    list_select_related = ["user"]
    readonly_fields = [f.name for f in TaskRecord._meta.fields] + [
        "why",
        "usage",
        "aged_now",
        "wait",
        "run_time",
        "position",
    ]
    actions = ["cancel_selected"]
    list_per_page = 50
    # One COUNT of the filtered history per page, not a second one of the whole history.
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        # Computed in SQL so that the list can sort on them: the wait so far of a queued task,
        # and the run time so far of a running one.
        return (
            super()
            .get_queryset(request)
            .annotate(
                wait_time=Case(
                    When(started_at__isnull=False, then=F("started_at") - F("submitted_at")),
                    When(status=states.PENDING, then=Now() - F("submitted_at")),
                    default=None,
                    output_field=DurationField(),
                ),
                run_time=Case(
                    When(
                        started_at__isnull=False,
                        then=Coalesce(F("finished_at"), Now()) - F("started_at"),
                    ),
                    default=None,
                    output_field=DurationField(),
                ),
            )
        )

    def get_changelist(self, request, **kwargs):
        return TaskChangeList

    @admin.display(description="wait", ordering="wait_time")
    def wait(self, obj: TaskRecord) -> str:
        return duration_text(getattr(obj, "wait_time", None) or obj.wait_seconds())

    @admin.display(description="run time", ordering="run_time")
    def run_time(self, obj: TaskRecord) -> str:
        return duration_text(getattr(obj, "run_time", None))

    @admin.display(description="position")
    def position(self, obj: TaskRecord) -> str:
        place = _place(obj)
        return "-" if place is None else str(place.position)

    @admin.display(description="usage before", ordering="usage_before")
    def usage(self, obj: TaskRecord) -> str:
        """The window usage that set the level, per weight when the weight is not 1."""
        charge = obj.charge if obj.charge == "time" else "tasks"
        used = obj.usage_before if charge == "time" else obj.count_before
        text = usage_text(used, charge)
        if obj.weight > 1:
            per = usage_per_weight(usage=used, weight=obj.weight, charge=charge)
            text += f" ({usage_text(per, charge)} per weight)"
        return text

    @admin.display(description="cost", ordering="cost")
    def cost_text(self, obj: TaskRecord) -> str:
        return f"{obj.cost:.1f} s (estimate)" if obj.charge == "time" else f"{obj.cost:g} task"

    @admin.display(description="run seconds", ordering="run_seconds")
    def run_seconds_text(self, obj: TaskRecord) -> str:
        return "-" if obj.run_seconds is None else f"{obj.run_seconds:.2f} s"

    @admin.display(description="aged", boolean=True)
    def aged_now(self, obj: TaskRecord) -> bool:
        """Lifted by aging: while queued as the fair queue says, then as the history says."""
        place = _place(obj) if obj.status == states.PENDING else None
        return place.aged if place is not None else obj.aged

    @admin.display(description="why this level")
    def why(self, obj: TaskRecord) -> str:
        return task_priority(obj, place=_place(obj))["reason"]

    def get_search_results(self, request, queryset, search_term):
        # The primary key is a UUID: search it by its text, so a partial id finds it too; a
        # user name finds that user's tasks.
        term = search_term.strip()
        if term:
            queryset = queryset.annotate(task_id_text=Cast("task_id", TextField()))
            return (
                queryset.filter(Q(task_id_text__icontains=term) | Q(user__username__iexact=term)),
                False,
            )
        return queryset, False

    def has_cancel_permission(self, request) -> bool:
        # The history is read-only (no change form), but cancelling is a change to the task.
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Cancel selected queued tasks", permissions=["cancel"])
    def cancel_selected(self, request, queryset) -> None:
        queued = queryset.filter(status=states.PENDING).select_related("user")
        others = queryset.exclude(status=states.PENDING).count()
        outcome = task_cancel_many(tasks=queued)
        skipped = others + outcome.not_cancellable
        self.message_user(
            request,
            f"Cancelled {len(outcome.cancelled)} queued task(s)"
            + (f"; {skipped} had already started or ended." if skipped else "."),
            messages.SUCCESS if outcome.cancelled else messages.WARNING,
        )
