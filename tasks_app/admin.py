"""Admin: the task history, with filters by user, level and status and search by task id."""

from django.contrib import admin, messages
from django.db.models import TextField
from django.db.models.functions import Cast

from . import selectors, services
from .models import TaskRecord


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    list_display = [
        "task_id",
        "user",
        "level",
        "status",
        "weight",
        "count_before",
        "aged",
        "submitted_at",
        "wait",
        "position",
    ]
    list_filter = ["status", "level", "aged", ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["task_id"]
    list_select_related = ["user"]
    date_hierarchy = "submitted_at"
    readonly_fields = [f.name for f in TaskRecord._meta.fields] + ["wait", "position"]
    actions = ["cancel_selected"]
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="wait (s)")
    def wait(self, obj: TaskRecord) -> str:
        wait = obj.wait_seconds()
        return "-" if wait is None else f"{wait:.1f}"

    @admin.display(description="position")
    def position(self, obj: TaskRecord) -> str:
        position = selectors.task_position(obj)
        return "-" if position is None else str(position)

    def get_search_results(self, request, queryset, search_term):
        # The primary key is a UUID: search it by its text, so a partial id finds it too.
        term = search_term.strip()
        if term:
            queryset = queryset.annotate(task_id_text=Cast("task_id", TextField()))
            return queryset.filter(task_id_text__icontains=term), False
        return queryset, False

    @admin.action(description="Cancel selected tasks that have not started")
    def cancel_selected(self, request, queryset) -> None:
        cancelled = 0
        for record in queryset:
            try:
                services.task_cancel(user=record.user, task_id=record.pk)
                cancelled += 1
            except services.TaskNotCancellable:
                pass
        self.message_user(request, f"Cancelled {cancelled} task(s).", messages.SUCCESS)
