"""What the OpenAPI schema says beyond the serializers, per route (openapi_responses.py holds
the parameters, errors and examples they share)."""

from drf_spectacular.authentication import BasicScheme
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from .error_shapes import FieldErrorsSerializer
from .openapi_responses import (
    BAD_WAIT,
    DOOR_REFUSED,
    FORBIDDEN,
    IDEMPOTENCY_KEY,
    NOT_FOUND,
    RETRY_AFTER,
    SEED_ACCEPTED,
    SUBMIT_ERRORS,
    SUBMIT_EXAMPLES,
    TASK_DETAIL,
    TASK_ID,
    TASK_ID_PATH,
    TASK_LISTED,
    UNAUTHORIZED,
    WAIT,
    WAIT_ELSEWHERE,
    _error,
    _ok,
)
from .seed_shapes import SeedAcceptedSerializer, SeedResultSerializer
from .serializers import (
    SubmitSerializer,
    TaskDetailSerializer,
    TaskSerializer,
    UsageSerializer,
)


class RememberedBasicScheme(BasicScheme):
    """HTTP basic, remembered per process (users_app.authentication): still HTTP basic."""

    target_class = "users_app.authentication.RememberedBasicAuthentication"


class FieldErrorsExtension(OpenApiSerializerExtension):
    """FieldErrorsSerializer is DRF's validation error: an object of field name -> messages."""

    target_class = FieldErrorsSerializer

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }


def _submit_responses(serializer, example, *, replay: str) -> dict:
    """A submission's answers on either route: accepted, replayed, or refused."""
    return {
        202: _ok(serializer, "Accepted and queued", example),
        200: _ok(
            serializer,
            f"The task an earlier request with this Idempotency-Key created: {replay}",
            example,
        ),
        **SUBMIT_ERRORS,
    }


seed_submit = extend_schema(
    operation_id="seed_submit",
    summary="Submit a task (the original project's route; also at /task/)",
    description=(
        "Accepts a JSON body only (`415` otherwise). The task is queued at once and runs "
        "later; poll `result_url`. A body `user_id` is accepted only if it names you (`403` "
        "otherwise)."
    ),
    request=SubmitSerializer,
    parameters=[IDEMPOTENCY_KEY, RETRY_AFTER],
    responses=_submit_responses(
        SeedAcceptedSerializer, SEED_ACCEPTED, replay="the original 202's body"
    ),
    examples=SUBMIT_EXAMPLES,
    tags=["original routes"],
)

seed_result = extend_schema(
    operation_id="seed_result",
    summary="Poll a task (the original project's route; also with a trailing slash)",
    parameters=[TASK_ID_PATH, WAIT, RETRY_AFTER],
    responses={
        200: OpenApiResponse(
            SeedResultSerializer,
            description="The task's state, and its result once it has ended",
            examples=[
                OpenApiExample(
                    "queued",
                    value={"task_id": TASK_ID, "task_status": "PENDING", "task_result": None},
                ),
                OpenApiExample(
                    "done",
                    value={
                        "task_id": TASK_ID,
                        "task_status": "SUCCESS",
                        "task_result": {
                            "init_timestamp": 1620388295.07,
                            "input_x": "foo",
                            "done_timestamp": 1620388355.07,
                        },
                    },
                ),
                OpenApiExample(
                    "failed",
                    value={
                        "task_id": TASK_ID,
                        "task_status": "FAILURE",
                        "task_result": {"error": "ValueError", "message": "bad input"},
                    },
                ),
            ],
        ),
        307: WAIT_ELSEWHERE,
        400: BAD_WAIT,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        429: DOOR_REFUSED,
    },
    tags=["original routes"],
)

tasks = extend_schema_view(
    list=extend_schema(
        summary="Your tasks, newest first",
        parameters=[RETRY_AFTER],
        responses={
            200: OpenApiResponse(
                TaskSerializer(many=True),
                description="A page of your tasks",
                examples=[
                    OpenApiExample(
                        "a page",
                        value={
                            "count": 1,
                            "next": None,
                            "previous": None,
                            "results": [TASK_LISTED],
                        },
                    )
                ],
            ),
            401: UNAUTHORIZED,
            404: _error("No such page", "Invalid page."),
            429: DOOR_REFUSED,
        },
    ),
    create=extend_schema(
        summary="Submit a task",
        description=(
            "Takes a JSON body, as `/task` does. The task is queued at once; poll its `url`. (The "
            "browsable API's HTML form also posts here, with `x` as JSON text; clients send JSON.)"
        ),
        # JSON only: a generated client given a choice of form and multipart sends multipart,
        # whose `x` is text (an object becomes its Python repr).
        request={"application/json": SubmitSerializer},
        parameters=[IDEMPOTENCY_KEY, RETRY_AFTER],
        responses=_submit_responses(
            TaskDetailSerializer,
            TASK_DETAIL,
            replay="the task as it is now, as GET /api/tasks/{task_id}/ answers (its status "
            "may have moved on since the 202)",
        ),
        examples=SUBMIT_EXAMPLES,
    ),
    retrieve=extend_schema(
        summary="One of your tasks",
        parameters=[TASK_ID_PATH, WAIT, RETRY_AFTER],
        responses={
            200: _ok(TaskDetailSerializer, "The task", TASK_DETAIL),
            307: WAIT_ELSEWHERE,
            400: BAD_WAIT,
            401: UNAUTHORIZED,
            404: NOT_FOUND,
            429: DOOR_REFUSED,
        },
    ),
    destroy=extend_schema(
        summary="Cancel a task that has not started",
        parameters=[TASK_ID_PATH, RETRY_AFTER],
        responses={
            200: _ok(
                TaskDetailSerializer,
                "Cancelled",
                {
                    **TASK_DETAIL,
                    "status": "REVOKED",
                    "position": None,
                    "estimated_start_at": None,
                    "wait_seconds": None,
                    "priority": {
                        **TASK_DETAIL["priority"],
                        "position": None,
                        "estimated_start_at": None,
                    },
                },
            ),
            401: UNAUTHORIZED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: _error("The task has started or ended", "the task has already started or ended"),
            429: DOOR_REFUSED,
        },
    ),
)

usage = extend_schema(
    summary="Your window usage, weight, the level your next task would get, when you are "
    "back at level 0, and your cap on active tasks",
    parameters=[RETRY_AFTER],
    responses={
        200: _ok(
            UsageSerializer,
            "Your usage",
            {
                "count": 3,
                "usage": 3.0,
                "unit": "tasks",
                "weight": 1,
                "next_level": 1,
                "bounds": [1, 6, 16, 26, 36],
                "level0_at": "2026-11-26T05:59:00.123456Z",
                "window_seconds": 6000,
                "cap": 100,
                "active": 2,
            },
        ),
        401: UNAUTHORIZED,
        429: DOOR_REFUSED,
    },
)

api_root = extend_schema(
    summary="Links to the API's collections, its schema and its docs",
    parameters=[RETRY_AFTER],
    responses={
        200: OpenApiResponse(
            {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}},
            description="Name -> URL",
            examples=[
                OpenApiExample(
                    "links",
                    value={
                        "tasks": "http://127.0.0.1:8000/api/tasks/",
                        "usage": "http://127.0.0.1:8000/api/usage/",
                        "schema": "http://127.0.0.1:8000/api/schema/",
                        "docs": "http://127.0.0.1:8000/api/docs/",
                    },
                )
            ],
        ),
        401: UNAUTHORIZED,
        429: DOOR_REFUSED,
    },
)
