"""Admin: the task history, read at a glance, with sortable waits and run times, filters, and a
cancel action; Celery's own result admins are left out (a task's page shows its stored result)."""

import json
from datetime import datetime, timedelta
from typing import Any

from celery import states
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Case, DurationField, ExpressionWrapper, F, Q, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, Now
from django.utils import timezone
from django.utils.html import format_html
from django_celery_results.models import GroupResult, TaskResult

from fairqueue.policy import usage_per_weight

from .models import TaskRecord
from .selectors.places import task_place, task_places
from .selectors.tasks import failure_summary  # a failure as its owner reads it
from .selectors.why import task_priority
from .services.actions import task_cancel_many
from .worker.progress import PROGRESS

# django-celery-results registers an admin for its stored results and group results: a second
# task list beside the history, with every user's results in full. pqh's history is the one
# list; a task's page shows its stored result's status and a short summary.
for _model in (TaskResult, GroupResult):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

# A task id in the list: its first characters, the whole id on hover and on the task's page.
SHORT_ID_CHARS = 8


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


def time_text(value: datetime | None) -> str:
    """Show a moment to the second, in the site's time zone: 2026-11-01 12:00:05."""
    if value is None:
        return "-"
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}"


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


def team_text(*, team: str | None, team_weight: int | None, weight: int) -> str:
    """Say a user's team and weights: "ml (team weight 3), member weight 2", or "no team
    (weight 2)"."""
    if not team:
        return f"no team (weight {weight})"
    return f"{team} (team weight {team_weight or 1}), member weight {weight}"


def stored_result_text(row: TaskResult | None) -> str:
    """Say what the result store holds for a task, briefly: its status, when it was stored, and
    the shape of a value (never the value: it may repeat the user's input) or a failure's type
    and first line, as the task's owner reads it."""
    if row is None:
        return "nothing stored yet"
    text = f"{row.status}, stored {time_text(row.date_done)}"
    try:
        value = json.loads(row.result) if row.result else None
    except (TypeError, ValueError):
        return f"{text}: not JSON"
    if row.status == states.FAILURE:
        failure = failure_summary(value)
        return f"{text}: {failure['error']}: {failure['message']}"
    if row.status == PROGRESS and isinstance(value, dict):
        fraction = value.get("fraction")
        if isinstance(fraction, int | float):
            return f"{text}: {fraction:.0%} done"
    if row.status != states.SUCCESS:
        return text
    return f"{text}: {_shape(value)} ({len(row.result.encode())} bytes of JSON)"


def _shape(value: Any) -> str:
    """What kind of JSON value it is, and how big: "an object of 3 keys"."""

    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    if isinstance(value, dict):
        return f"an object of {count(len(value), 'key')}"
    if isinstance(value, list):
        return f"a list of {count(len(value), 'item')}"
    if isinstance(value, str):
        return f"a string of {count(len(value), 'character')}"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    # What an operator reads at a glance, narrow enough for a 1280-px screen beside the filters:
    # which task (a short id), whose, at which level (and whether aging lifted it), in which
    # state, how long it waited and ran, where it stands, when it came. The weight, the usage
    # that set the level and the cost are on the task's page, with the sentence that explains.
    list_display = [
        "short_id",
        "username",
        "level",
        "aged_now",
        "status",
        "wait",
        "position",
        "run_time",
        "submitted",
    ]
    # A date filter, not date_hierarchy: the hierarchy lists the distinct days of the whole
    # history, a scan that grows with it; the filter's choices cost no query.
    list_filter = ["status", LevelFilter, "aged", "charge", UserNameFilter, "submitted_at"]
    search_fields = ["task_id"]
    search_help_text = "A user name (exact), or part of a task id."
    list_select_related = ["user"]
    fieldsets = [
        (None, {"fields": ["task_id", "user", "status", "level", "aged_text", "why"]}),
        (
            "Times",
            {"fields": ["submitted", "started", "finished", "wait", "run_time", "position"]},
        ),
        ("What set the level", {"fields": ["weight", "charge", "usage", "cost_text"]}),
        ("How its level was shared", {"fields": ["team_text"]}),
        ("Run", {"fields": ["attempts", "worker", "stored_result"]}),
        ("Submission", {"fields": ["queue_seq", "idempotency_key", "input"]}),
    ]
    readonly_fields = [f.name for f in TaskRecord._meta.fields] + [
        "why",
        "usage",
        "aged_text",
        "wait",
        "run_time",
        "position",
        "submitted",
        "started",
        "finished",
        "cost_text",
        "team_text",
        "stored_result",
    ]
    actions = ["cancel_selected"]
    list_per_page = 50
    # One COUNT of the filtered history per page, not a second one of the whole history.
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # The history is a record: tasks leave it by the expiry job (README, "Expiry"), not by
        # hand; a queued task is cancelled (the action), which keeps its row.
        return False

    def get_queryset(self, request):
        # Computed in SQL so that the list can sort on them: the wait so far of a queued task,
        # and the run time: what the work took once it ended (run_seconds, measured by the
        # worker; the time from start to end when it has none), so far while it runs.
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
                        status=states.STARTED,
                        started_at__isnull=False,
                        then=Now() - F("started_at"),
                    ),
                    When(
                        run_seconds__isnull=False,
                        then=ExpressionWrapper(
                            F("run_seconds") * Value(timedelta(seconds=1)),
                            output_field=DurationField(),
                        ),
                    ),
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

    def changelist_view(self, request, extra_context=None):
        # The page's name, not Django's "Select task to view".
        return super().changelist_view(request, {"title": "Task history", **(extra_context or {})})

    @admin.display(description="task")
    def short_id(self, obj: TaskRecord) -> str:
        full = str(obj.pk)
        return format_html(
            '<span class="task-id" title="{}">{}</span>', full, full[:SHORT_ID_CHARS]
        )

    @admin.display(description="user", ordering="user__username")
    def username(self, obj: TaskRecord) -> str:
        name = obj.user.get_username()
        return format_html('<span class="user-name" title="{}">{}</span>', name, name)

    @admin.display(description="submitted", ordering="submitted_at")
    def submitted(self, obj: TaskRecord) -> str:
        return time_text(obj.submitted_at)

    @admin.display(description="started")
    def started(self, obj: TaskRecord) -> str:
        return time_text(obj.started_at)

    @admin.display(description="finished")
    def finished(self, obj: TaskRecord) -> str:
        return time_text(obj.finished_at)

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

    @admin.display(description="team", ordering="team")
    def team_text(self, obj: TaskRecord) -> str:
        """The team recorded at submission, its weight and the member weight."""
        return team_text(team=obj.team, team_weight=obj.team_weight, weight=obj.weight)

    @admin.display(description="cost", ordering="cost")
    def cost_text(self, obj: TaskRecord) -> str:
        return f"{obj.cost:.1f} s (estimate)" if obj.charge == "time" else f"{obj.cost:g} task"

    def _aged(self, obj: TaskRecord) -> bool:
        """Lifted by aging: while queued as the fair queue says, then as the history says."""
        place = _place(obj) if obj.status == states.PENDING else None
        return place.aged if place is not None else obj.aged

    @admin.display(description="aged")
    def aged_now(self, obj: TaskRecord) -> str:
        """In the list: a plain word where aging lifted the task, Django's "-" where it did not."""
        return format_html('<span class="aged-mark">{}</span>', "aged") if self._aged(obj) else ""

    @admin.display(description="aged")
    def aged_text(self, obj: TaskRecord) -> str:
        """On the task's page: yes or no (the sentence below says what aging did)."""
        return "yes" if self._aged(obj) else "no"

    @admin.display(description="why this level")
    def why(self, obj: TaskRecord) -> str:
        return task_priority(obj, place=_place(obj))["reason"]

    @admin.display(description="stored result")
    def stored_result(self, obj: TaskRecord) -> str:
        """The result store's row of this task (one query, on the task's page only)."""
        row = (
            TaskResult.objects.filter(task_id=str(obj.pk))
            .only("status", "date_done", "result")
            .first()
        )
        return stored_result_text(row)

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
