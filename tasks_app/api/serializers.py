"""Shapes of the task API: submissions in, task records and usage out (the errors' shapes are in
error_shapes.py, the original project's two answers in seed_shapes.py)."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import STATUS_CHOICES, TaskRecord
from ..selectors.detail import TaskView
from ..selectors.why import shown_seconds
from ..waits import links as waits
from ..worker.progress import PROGRESS
from .parsers import JSONInputError, json_parse, json_text_problem


class JSONInputField(serializers.JSONField):
    """Any JSON value that PostgreSQL's jsonb can store, also when a form sends it as text."""

    def to_internal_value(self, data):
        """Parse form text strictly (a JSON body is parsed already); refuse text jsonb refuses."""
        if isinstance(data, bytes | str) and (self.binary or getattr(data, "is_json_string", 0)):
            try:
                data = json_parse(data, max_depth=settings.PQH_MAX_JSON_DEPTH)
            except JSONInputError as exc:
                raise serializers.ValidationError(str(exc)) from None
        elif not isinstance(data, dict | list | str | int | float | bool):
            self.fail("invalid")  # e.g. a file uploaded in a multipart form
        problem = json_text_problem(data, path=self.field_name)
        if problem:
            raise serializers.ValidationError(problem)
        return data


class SubmitSerializer(serializers.Serializer):
    """A submission: `x` is required and may be any JSON value."""

    x = JSONInputField(
        required=True,
        allow_null=True,
        help_text=(
            "The task's input, any JSON value: at most PQH_MAX_INPUT_BYTES (default 65536) "
            "bytes as compact JSON, nested at most PQH_MAX_JSON_DEPTH (default 32) levels "
            "counting the request body, no NaN or Infinity, and no control characters in "
            "strings or keys other than tab, newline and carriage return."
        ),
    )
    user_id = serializers.CharField(
        required=False,
        help_text="Optional, for compatibility: must name the authenticated user if given.",
    )


# The states a task shows through the API: the history's, plus Celery's custom PROGRESS state
# while a running task has reported progress.
API_STATUS_CHOICES = [*STATUS_CHOICES, (PROGRESS, "PROGRESS (running, with a progress report)")]


# Formats the task's times as DRF's DateTimeField does (ISO 8601, UTC as "Z").
_DATETIME = serializers.DateTimeField()


class TaskSerializer(serializers.ModelSerializer):
    """A task as its owner sees it in lists."""

    status = serializers.ChoiceField(choices=API_STATUS_CHOICES, read_only=True)
    x = serializers.JSONField(source="input", read_only=True)
    wait_seconds = serializers.SerializerMethodField(
        help_text="start - submit, or for a queued task the wait so far"
    )
    url = serializers.SerializerMethodField()
    result_url = serializers.SerializerMethodField()
    wait_url = serializers.SerializerMethodField(
        help_text="this task's detail on the wait server, answered as soon as the task ends "
        "(or after PQH_WAIT_MAX_SECONDS with its state then)"
    )
    events_url = serializers.SerializerMethodField(
        help_text="this task's moves as Server-Sent Events, on the wait server"
    )

    class Meta:
        model = TaskRecord
        fields = [
            "task_id",
            "url",
            "result_url",
            "wait_url",
            "events_url",
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

    # Each field's value, written out once: DRF's generic path (a ModelSerializer builds its
    # fields from the model on every instance, then calls each field and method in turn) was
    # most of a detail read's serialization cost. The declared fields above still describe
    # the shape for the OpenAPI schema; a test checks both name the same keys.
    def to_representation(self, instance: TaskRecord) -> dict:
        path = str(instance.pk)
        dt = _DATETIME.to_representation
        return {
            "task_id": path,
            "url": self.get_url(instance),
            "result_url": self.get_result_url(instance),
            "wait_url": waits.wait_url(f"/api/tasks/{path}/"),
            "events_url": waits.events_url(path),
            "status": instance.status,
            "level": instance.level,
            "weight": instance.weight,
            "count_before": instance.count_before,
            "aged": bool(instance.aged),
            "x": instance.input,
            "submitted_at": dt(instance.submitted_at),
            "started_at": None if instance.started_at is None else dt(instance.started_at),
            "finished_at": None if instance.finished_at is None else dt(instance.finished_at),
            "wait_seconds": self.get_wait_seconds(instance),
        }

    def get_wait_seconds(self, obj: TaskRecord) -> float | None:
        wait = obj.wait_seconds()
        return None if wait is None else shown_seconds(wait)

    def get_url(self, obj: TaskRecord) -> str:
        return self._absolute(reverse("api-task-detail", args=[obj.pk]))

    def get_result_url(self, obj: TaskRecord) -> str:
        return self._absolute(reverse("result", args=[obj.pk]))

    def get_wait_url(self, obj: TaskRecord) -> str:
        return waits.wait_url(f"/api/tasks/{obj.pk}/")

    def get_events_url(self, obj: TaskRecord) -> str:
        return waits.events_url(obj.pk)

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class ProgressSerializer(serializers.Serializer):
    """What a running task last reported through its `progress` function."""

    fraction = serializers.FloatField(min_value=0, max_value=1, help_text="done so far, 0..1")
    message = serializers.CharField(allow_blank=True, help_text="a short message of the work's")
    updated_at = serializers.FloatField(help_text="when it was reported, epoch seconds")


class PrioritySerializer(serializers.Serializer):
    """Why the task waits where it does: what set its level, and where it stands now."""

    level = serializers.IntegerField(
        min_value=0, help_text="The priority level it was given at submission, 0 (best) to 5."
    )
    charge = serializers.ChoiceField(
        choices=["tasks", "time"],
        help_text="What set the level (PQH_CHARGE when it was submitted): the count of your "
        "tasks in the window (tasks), or the seconds of service they were charged (time).",
    )
    usage_before = serializers.FloatField(
        help_text="Your window usage when it was submitted, in `unit`: the tasks you had "
        "submitted in the last PQH_WINDOW_SECONDS, or the seconds they were charged (a task's "
        "estimate until it ends, then what its run took).",
    )
    unit = serializers.ChoiceField(
        choices=["tasks", "seconds"], help_text="The unit of usage_before, bounds and cost."
    )
    weight = serializers.IntegerField(
        min_value=1, help_text="Your weight when it was submitted: usage is divided by it."
    )
    team = serializers.CharField(
        allow_null=True,
        help_text="Your team when it was submitted; null: no team (you shared the level as a "
        "team of your own, at your weight). Within a level the service is shared among teams "
        "(and users in no team) by team weight, then within a team by member weight.",
    )
    team_weight = serializers.IntegerField(
        allow_null=True,
        min_value=1,
        help_text="Your team's weight when it was submitted; null with no team.",
    )
    member_weight = serializers.IntegerField(
        min_value=1,
        help_text="Your weight within your team (the same as `weight`); with no team, your "
        "weight among the teams.",
    )
    usage_per_weight = serializers.FloatField(
        help_text="What the policy compared with the bounds: usage_before // weight (whole "
        "tasks) under tasks, usage_before / weight (seconds) under time.",
    )
    bounds = serializers.ListField(
        child=serializers.FloatField(),
        help_text="The level bounds in `unit` (PQH_LEVEL_BOUNDS, or PQH_LEVEL_BOUNDS_SECONDS "
        "under time): usage_per_weight reaching bounds[i] gives level i + 1 at least; level 0 "
        "needs less than bounds[0].",
    )
    cost = serializers.FloatField(
        help_text="What the task was charged at submission: 1 (tasks), or its estimated "
        "seconds (time: your recent mean run time, or PQH_TASK_SECONDS with no history)."
    )
    run_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Once it has ended: the seconds its run spent in the work (under time, what "
        "it is charged instead of `cost`), to the millisecond; null before.",
    )
    aged = serializers.BooleanField(
        help_text="Whether aging lifted it: it waited longer than PQH_MAX_WAIT_SECONDS and goes "
        "ahead of every level (read from the queue while queued, from the history once "
        "released).",
    )
    position = serializers.IntegerField(
        allow_null=True,
        help_text="While queued: the tasks of the whole queue that start before it if no more "
        "arrive (the same as the task's position); null otherwise.",
    )
    estimated_start_at = serializers.DateTimeField(
        allow_null=True,
        help_text="While queued: when it should start (the same as the task's "
        "estimated_start_at); null otherwise and in the answer to a submission.",
    )
    reason = serializers.CharField(
        help_text='The same in one sentence, e.g. "level 2: 7 tasks in the last 6000 s at '
        "weight 1 reach the bound 6 (level 0 needs fewer than 1); team ml (team weight 3) "
        'shares its level among teams, then member weight 1 within the team".',
    )


class TaskDetailSerializer(TaskSerializer):
    """A single task: adds its queue position and priority while queued, and its result once
    finished."""

    position = serializers.SerializerMethodField(
        help_text="while queued: how many of the queued tasks start before this one, in the "
        "order workers take them (released tasks, then better levels, then the fair order)"
    )
    estimated_start_at = serializers.SerializerMethodField(
        help_text="while queued: when it should start, from its position, the tasks running and "
        "recent run times (PQH_TASK_SECONDS before any task has finished) "
        "(null in the answer to a submission: poll the task)"
    )
    priority = serializers.SerializerMethodField(
        help_text="Why it waits: its level and the window usage that set it against the "
        "bounds, your weight, its cost, whether aging lifted it, its position and estimated "
        "start, and a sentence that says it"
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
            "priority",
            "progress",
            "result",
        ]
        read_only_fields = fields

    def to_representation(self, view: TaskView) -> dict:
        """Shape a TaskView (selectors.detail.task_view): everything is read already."""
        data = super().to_representation(view.record)
        data["status"] = view.status
        data["position"] = self.get_position(view)
        data["estimated_start_at"] = self.get_estimated_start_at(view)
        data["priority"] = self.get_priority(view)
        data["progress"] = self.get_progress(view)
        data["result"] = self.get_result(view)
        return data

    # The fields' types for the schema; each reads the view, which holds the value.
    def get_position(self, view: TaskView) -> int | None:
        return view.position

    @extend_schema_field(PrioritySerializer)
    def get_priority(self, view: TaskView) -> dict:
        return view.priority

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_estimated_start_at(self, view: TaskView) -> str | None:
        return view.priority["estimated_start_at"]

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, view: TaskView) -> dict | None:
        return view.progress

    @extend_schema_field(OpenApiTypes.ANY)
    def get_result(self, view: TaskView):
        return view.result


class SecondsField(serializers.FloatField):
    """Seconds (or a count, under PQH_CHARGE=tasks) as the API shows them: to the millisecond."""

    def to_representation(self, value) -> float:
        return shown_seconds(float(value))


class UsageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="your submissions in the window")
    usage = SecondsField(
        help_text="what sets your level, in `unit`: the count (PQH_CHARGE=tasks), or the "
        "seconds of service your tasks in the window were charged (time: a task's estimate "
        "until it ends, then what its run took)"
    )
    unit = serializers.ChoiceField(choices=["tasks", "seconds"], help_text="the unit of usage")
    weight = serializers.IntegerField(help_text="your weight: usage is divided by it")
    next_level = serializers.IntegerField(help_text="the level your next task would get")
    bounds = serializers.ListField(
        child=SecondsField(),
        help_text="the level bounds in `unit` (per weight): reaching bounds[i] gives level "
        "i + 1 at least; level 0 needs less than bounds[0]",
    )
    level0_at = serializers.DateTimeField(
        allow_null=True,
        help_text="when your next task would get level 0 again if you stop submitting now (as "
        "your submissions leave the window); null if it already would",
    )
    window_seconds = serializers.IntegerField(help_text="the window's length, PQH_WINDOW_SECONDS")
    cap = serializers.IntegerField(
        help_text="how many tasks you may have queued or running at once: your own cap, or "
        "PQH_USER_MAX_ACTIVE; a submission past it is a 429 user_cap"
    )
    active = serializers.IntegerField(
        help_text="your tasks queued or running now, as the cap counts them"
    )
    team = serializers.CharField(
        allow_null=True,
        help_text="your team's name: within a level the service is shared among teams (and "
        "users in no team) by weight, then a team's share among its members by theirs; null "
        "if you are in no team (you share as a team of your own, at your weight)",
    )
    team_weight = serializers.IntegerField(
        allow_null=True, help_text="your team's weight; null if you are in no team"
    )
