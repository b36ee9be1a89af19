"""The original project's two answers, kept as it gave them: POST /task's 202 and
GET /result/<id> (schema shapes, and the poll's body)."""

from rest_framework import serializers

from ..worker.progress import PROGRESS
from .serializers import API_STATUS_CHOICES, ProgressSerializer


class SeedAcceptedSerializer(serializers.Serializer):
    """The answer of POST /task, as the original project gave it."""

    task_id = serializers.UUIDField(help_text="The task's id.")
    result_url = serializers.CharField(help_text="Where to poll: /result/<task_id>.")
    user_id = serializers.CharField(help_text="Who submitted it: the authenticated user's name.")
    level = serializers.IntegerField(min_value=0, help_text="The priority level, 0 (best) to 5.")
    wait_url = serializers.CharField(
        help_text="The same poll on the wait server, answered as soon as the task ends (or "
        "after PQH_WAIT_MAX_SECONDS with its state then): an absolute URL."
    )
    events_url = serializers.CharField(
        help_text="The task's moves as Server-Sent Events, on the wait server: an absolute URL."
    )


class SeedResultSerializer(serializers.Serializer):
    """The answer of GET /result/<task_id>, as the original project gave it."""

    task_id = serializers.UUIDField(help_text="The task's id.")
    task_status = serializers.ChoiceField(choices=API_STATUS_CHOICES, help_text="Celery's state.")
    task_result = serializers.JSONField(
        allow_null=True,
        help_text=(
            "null until the task ends; then what the work returned, or for a FAILURE "
            '{"error": <exception type>, "message": ...}.'
        ),
    )
    progress = ProgressSerializer(
        required=False, help_text="Only while the task runs and has reported progress."
    )


def seed_result_body(task_id, poll) -> dict:
    """The answer of GET /result/<id> for a Poll (selectors.tasks): the original's three keys,
    plus Celery's custom state and a fourth key while the work reports progress."""
    body = {"task_id": str(task_id), "task_status": poll.status, "task_result": poll.result}
    if poll.progress is not None:
        body.update(task_status=PROGRESS, progress=poll.progress)
    return body
