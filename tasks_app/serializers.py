"""Shapes of the task API: submissions in, task records and usage out."""

from celery import states
from django.urls import reverse
from rest_framework import serializers

from .models import TaskRecord
from .progress import PROGRESS
from .selectors import task_position, task_progress, task_result_value, task_start_estimate


class SubmitSerializer(serializers.Serializer):
    """A submission: `x` is required and may be any JSON value."""

    x = serializers.JSONField(
        required=True,
        allow_null=True,
        help_text="The task's input, any JSON value (size-capped by PQH_MAX_INPUT_BYTES).",
    )
    user_id = serializers.CharField(
        required=False,
        help_text="Optional, for compatibility: must name the authenticated user if given.",
    )


class TaskSerializer(serializers.ModelSerializer):
    """A task as its owner sees it in lists."""

    x = serializers.JSONField(source="input", read_only=True)
    wait_seconds = serializers.SerializerMethodField(
        help_text="start - submit, or for a queued task the wait so far"
    )
    url = serializers.SerializerMethodField()
    result_url = serializers.SerializerMethodField()

    class Meta:
        model = TaskRecord
        fields = [
            "task_id",
            "url",
            "result_url",
            "status",
            "level",
            "weight",
            "count_before",
            "aged",
            "x",
            "submitted_at",
            "started_at",
            "finished_at",
            "wait_seconds",
        ]
        read_only_fields = fields

    def get_wait_seconds(self, obj: TaskRecord) -> float | None:
        wait = obj.wait_seconds()
        return None if wait is None else round(wait, 3)

    def get_url(self, obj: TaskRecord) -> str:
        return self._absolute(reverse("api-task-detail", args=[obj.pk]))

    def get_result_url(self, obj: TaskRecord) -> str:
        return self._absolute(reverse("result", args=[obj.pk]))

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class TaskDetailSerializer(TaskSerializer):
    """A single task: adds its queue position while queued, and its result once finished."""

    position = serializers.SerializerMethodField(
        help_text="queued tasks ahead of this one (better levels, then older at its level)"
    )
    estimated_start_at = serializers.SerializerMethodField(
        help_text="while queued: when it should start, from its position and recent run times "
        "(null in the answer to a submission: poll the task)"
    )
    progress = serializers.SerializerMethodField(
        help_text="while running: its last report, {fraction (0..1), message, updated_at}; "
        "status is then PROGRESS"
    )
    result = serializers.SerializerMethodField()

    class Meta(TaskSerializer.Meta):
        fields = [
            *TaskSerializer.Meta.fields,
            "position",
            "estimated_start_at",
            "progress",
            "result",
        ]
        read_only_fields = fields

    def to_representation(self, instance: TaskRecord):
        data = super().to_representation(instance)
        if data["progress"] is not None:
            data["status"] = PROGRESS
        return data

    def get_position(self, obj: TaskRecord) -> int | None:
        # Asked once per task: the start estimate uses it too.
        positions = self.__dict__.setdefault("_positions", {})
        if obj.pk not in positions:
            positions[obj.pk] = task_position(obj)
        return positions[obj.pk]

    def get_estimated_start_at(self, obj: TaskRecord) -> str | None:
        # Not in the answer to a submission (context "estimate": False): two more queries on
        # the hot path. A poll of the task shows it.
        if obj.status != states.PENDING or not self.context.get("estimate", True):
            return None
        start = task_start_estimate(obj, position=self.get_position(obj))
        return None if start is None else start.isoformat().replace("+00:00", "Z")

    def get_progress(self, obj: TaskRecord) -> dict | None:
        return task_progress(obj)

    def get_result(self, obj: TaskRecord):
        return task_result_value(obj)


class UsageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="your submissions in the window")
    weight = serializers.IntegerField()
    next_level = serializers.IntegerField(help_text="the level your next task would get")
    window_seconds = serializers.IntegerField()
