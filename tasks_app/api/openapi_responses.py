"""The schema's shared parts: parameters, every error answer, and the example bodies."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    inline_serializer,
)
from rest_framework import serializers

from .error_shapes import (
    DoorRefusalSerializer,
    ErrorSerializer,
    FieldErrorsSerializer,
    UnavailableErrorSerializer,
    UserCapErrorSerializer,
)

TASK_ID = "3f0c9a52-8a31-4c57-9a3e-5b8f0f4b2d17"

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description=(
        "Optional. Retrying with the same key (same user, within 24 h) answers `200` with the "
        "task the first request created instead of creating another (see the 200 answer for "
        "its body); while the first request with that key is still being processed the "
        "answer is `409`. A key is 1 to 255 printable ASCII characters; anything else is a "
        "`400`."
    ),
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    required=True,
    response=[429, 503],
    description="Seconds to wait before trying again.",
)
TASK_ID_PATH = OpenApiParameter(
    "task_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The task's id; another user's task, or any other string, is a 404.",
)

WAIT = OpenApiParameter(
    "wait",
    float,
    OpenApiParameter.QUERY,
    description=(
        "Seconds to wait for the task to end, 0 to PQH_WAIT_MAX_SECONDS (30); or the header "
        "`Prefer: wait=S`. Waits are answered by the wait server (the answer's `wait_url`); "
        "this server answers a wait above 0 with a `307` to the same path there, and a wait "
        "of 0 at once."
    ),
)


def _error(
    description: str, detail: str, *, serializer=ErrorSerializer, **extra
) -> OpenApiResponse:
    return OpenApiResponse(
        serializer,
        description=description,
        examples=[OpenApiExample(description, value={"detail": detail, **extra})],
    )


BAD_REQUEST = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="BadRequest",
        # The error first: it requires `detail`, so a client that tries each in turn (as
        # openapi-python-client's does) cannot take a {"detail": ...} for field errors.
        serializers=[ErrorSerializer, FieldErrorsSerializer],
        resource_type_field_name=None,
    ),
    description=(
        'The request is wrong: a field (`{"x": [...]}`), or the body as a whole '
        '(`{"detail": ...}`: malformed JSON, not UTF-8, nested too deeply, a number out of '
        "range, a bad header value)."
    ),
    examples=[
        OpenApiExample("x is missing", value={"x": ["This field is required."]}),
        OpenApiExample(
            "x has a NUL character",
            value={
                "x": [
                    'x["prompt"]: contains the control character U+0000 at offset 1; only '
                    "tab, newline and carriage return are accepted"
                ]
            },
        ),
        OpenApiExample(
            "nested too deeply", value={"detail": "JSON nests too deeply; the limit is 32 levels"}
        ),
    ],
)
UNAUTHORIZED = _error("No or wrong credentials", "Authentication credentials were not provided.")
FORBIDDEN = _error(
    "Not allowed (e.g. a CSRF token missing from a session POST)",
    "CSRF Failed: CSRF token missing.",
)
NOT_FOUND = _error("No such task of yours", "Not found.")
TOO_LARGE = _error(
    "Body over PQH_MAX_BODY_BYTES", "the request body is over the limit of 1048576 bytes"
)
UNSUPPORTED = _error("Not a JSON body", 'Unsupported media type "text/plain" in request.')
USER_CAP = OpenApiResponse(
    UserCapErrorSerializer,
    description="You have as many tasks queued or running as you may; nothing was recorded.",
    examples=[
        OpenApiExample(
            "user cap",
            value={
                "detail": "you have 100 tasks queued or running; the limit is 100",
                "code": "user_cap",
                "limit": 100,
                "active": 100,
            },
        )
    ],
)
DOOR_EXAMPLES = [
    OpenApiExample(
        "rate limited",
        value={
            "detail": "too many reads: the rate is 1200/m; retry after the seconds in Retry-After",
            "code": "rate_limited",
        },
    ),
    OpenApiExample(
        "locked out",
        value={
            "detail": "too many failed logins from your address: password logins from it are "
            "refused for 900 s; a token still works",
            "code": "locked_out",
        },
    ),
]
DOOR_REFUSED = OpenApiResponse(
    DoorRefusalSerializer,
    description=(
        "Refused at the door, before any work: past your request rate (`rate_limited`; "
        "PQH_SUBMIT_RATE for submissions and cancels, PQH_READ_RATE for reads, PQH_ANON_RATE "
        "per address for anonymous requests and failed tokens), or too many failed logins from "
        "your address (`locked_out`). See Retry-After."
    ),
    examples=DOOR_EXAMPLES,
)
USER_CAP_OR_DOOR = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="TooManyRequests",
        serializers=[UserCapErrorSerializer, DoorRefusalSerializer],
        resource_type_field_name=None,
    ),
    description=(
        "You have as many tasks queued or running as you may (`user_cap`; nothing was "
        "recorded), or the door refused the request (`rate_limited`, `locked_out`). See "
        "Retry-After."
    ),
    examples=[*USER_CAP.examples, *DOOR_EXAMPLES],
)
UNAVAILABLE = OpenApiResponse(
    UnavailableErrorSerializer,
    description=(
        "The queue is full (`queue_full`), or Redis or PostgreSQL cannot be reached "
        "(`unavailable`); nothing was recorded."
    ),
    examples=[
        OpenApiExample(
            "queue full",
            value={"detail": "the queue is full; try again later", "code": "queue_full"},
        ),
        OpenApiExample(
            "unavailable",
            value={"detail": "the queue is unavailable; try again shortly", "code": "unavailable"},
        ),
    ],
)
IDEMPOTENCY_CONFLICT = _error(
    "A request with this Idempotency-Key is still being processed",
    "a request with this Idempotency-Key is still being processed",
)

SUBMIT_EXAMPLES = [
    OpenApiExample("a string", value={"x": "foo"}, request_only=True),
    OpenApiExample("an object", value={"x": {"prompt": "hello", "n": 3}}, request_only=True),
]
SUBMIT_ERRORS = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    409: IDEMPOTENCY_CONFLICT,
    413: TOO_LARGE,
    415: UNSUPPORTED,
    429: USER_CAP_OR_DOOR,
    503: UNAVAILABLE,
}


WAIT_ELSEWHERE = OpenApiResponse(
    inline_serializer(
        "WaitElsewhere",
        {"detail": serializers.CharField(), "wait_url": serializers.CharField()},
    ),
    description="A wait above 0: answered by the wait server; `Location` names the same "
    "path there (also in the body's `wait_url`)",
    examples=[
        OpenApiExample(
            "to the wait server",
            value={
                "detail": "waits are answered by the wait server: ask "
                f"http://127.0.0.1:8001/result/{TASK_ID}?wait=30",
                "wait_url": f"http://127.0.0.1:8001/result/{TASK_ID}?wait=30",
            },
        )
    ],
)
BAD_WAIT = _error(
    "A wait that is not a number of seconds from 0 to PQH_WAIT_MAX_SECONDS",
    "wait must be a number of seconds from 0 to 30, got 'soon'",
)


def _ok(serializer, description: str, value) -> OpenApiResponse:
    return OpenApiResponse(
        serializer, description=description, examples=[OpenApiExample(description, value=value)]
    )


SEED_ACCEPTED = {
    "task_id": TASK_ID,
    "result_url": f"/result/{TASK_ID}",
    "user_id": "demo1",
    "level": 0,
    "wait_url": f"http://127.0.0.1:8001/result/{TASK_ID}?wait=30",
    "events_url": f"http://127.0.0.1:8001/api/tasks/{TASK_ID}/events",
}
TASK_DETAIL = {
    "task_id": TASK_ID,
    "url": f"http://127.0.0.1:8000/api/tasks/{TASK_ID}/",
    "result_url": f"http://127.0.0.1:8000/result/{TASK_ID}",
    "wait_url": f"http://127.0.0.1:8001/api/tasks/{TASK_ID}/?wait=30",
    "events_url": f"http://127.0.0.1:8001/api/tasks/{TASK_ID}/events",
    "status": "PENDING",
    "level": 1,
    "weight": 1,
    "count_before": 3,
    "aged": False,
    "x": {"prompt": "hello", "n": 3},
    "submitted_at": "2026-11-26T04:19:00.123456Z",
    "started_at": None,
    "finished_at": None,
    "wait_seconds": 1.52,
    "position": 4,
    "estimated_start_at": "2026-11-26T04:21:10Z",
    "priority": {
        "level": 1,
        "charge": "tasks",
        "usage_before": 3,
        "unit": "tasks",
        "weight": 1,
        "usage_per_weight": 3,
        "bounds": [1, 6, 16, 26, 36],
        "cost": 1.0,
        "run_seconds": None,
        "aged": False,
        "position": 4,
        "estimated_start_at": "2026-11-26T04:21:10Z",
        "reason": "level 1: 3 tasks in the last 6000 s at weight 1 reach the bound 1 "
        "(level 0 needs fewer than 1)",
    },
    "progress": None,
    "result": None,
}
TASK_LISTED = {
    k: v
    for k, v in TASK_DETAIL.items()
    if k not in ("position", "estimated_start_at", "priority", "progress", "result")
}
