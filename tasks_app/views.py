"""HTTP edges: parse, authorise, call a service or selector, shape the answer."""

import uuid

from django.http import Http404, JsonResponse
from django.urls import reverse
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import (
    APIException,
    ParseError,
    PermissionDenied,
    ValidationError,
)
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .serializers import SubmitSerializer, TaskDetailSerializer, TaskSerializer, UsageSerializer


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "conflict"


class Refused(APIException):
    """A submission refused by a limit: a JSON body with a `code`, and a Retry-After header."""

    def __init__(self, status_code: int, body: dict, retry_after: int):
        super().__init__(body["detail"])
        self.status_code = status_code
        self.detail = body  # as is: DRF would turn the numbers in it into strings
        self.wait = retry_after  # DRF's exception handler sends it as Retry-After


def _submit(request):
    """Validate a submission body and hand it to task_submit; shared by both routes.

    Returns the accepted task, or the earlier one when the Idempotency-Key replays it
    (`record.replayed`): the routes answer 202, or 200 for a replay, with the same body.
    """
    serializer = SubmitSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    claimed = serializer.validated_data.get("user_id")
    if claimed is not None and claimed not in (request.user.get_username(), str(request.user.pk)):
        raise PermissionDenied({"user_id": "you may only submit tasks as yourself"})
    try:
        return services.task_submit(
            user=request.user,
            x=serializer.validated_data["x"],
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
    except services.SubmissionRefused as exc:
        raise ValidationError({"x": [str(exc)]}) from exc
    except services.InvalidIdempotencyKey as exc:
        raise ParseError(str(exc)) from exc
    except services.IdempotencyConflict as exc:
        raise Conflict(str(exc)) from exc
    except services.UserCapReached as exc:
        body = {"detail": str(exc), "code": exc.reason, "limit": exc.limit, "active": exc.active}
        raise Refused(status.HTTP_429_TOO_MANY_REQUESTS, body, exc.retry_after) from exc
    except services.QueueFull as exc:
        body = {"detail": str(exc), "code": exc.reason}
        raise Refused(status.HTTP_503_SERVICE_UNAVAILABLE, body, exc.retry_after) from exc
    except services.QueueUnavailable as exc:
        body = {"detail": str(exc), "code": exc.reason}
        raise Refused(status.HTTP_503_SERVICE_UNAVAILABLE, body, exc.retry_after) from exc


def _accepted(record) -> int:
    return status.HTTP_200_OK if record.replayed else status.HTTP_202_ACCEPTED


def _parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


class SeedTaskView(APIView):
    """POST /task: the original project's submission route."""

    def post(self, request):
        record = _submit(request)
        return Response(
            {
                "task_id": str(record.pk),
                "result_url": reverse("result", args=[record.pk]),
                "user_id": request.user.get_username(),
                "level": record.level,
            },
            status=_accepted(record),
        )


class SeedResultView(APIView):
    """GET /result/<task_id>: the original project's polling route."""

    def get(self, request, task_id: str):
        record = selectors.task_get_for_user(user=request.user, task_id=_parse_uuid(task_id))
        if record is None:
            raise Http404
        return Response(
            {
                "task_id": str(record.pk),
                "task_status": record.status,
                "task_result": selectors.task_result_value(record),
            }
        )


class TaskViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Your tasks: list (newest first), submit, retrieve, and cancel one that has not started."""

    lookup_field = "pk"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.task_list_for_user(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return SubmitSerializer
        if self.action == "list":
            return TaskSerializer
        return TaskDetailSerializer

    def get_object(self):
        record = selectors.task_get_for_user(
            user=self.request.user, task_id=_parse_uuid(self.kwargs["pk"])
        )
        if record is None:
            raise Http404
        return record

    def create(self, request, *args, **kwargs):
        """Submit a task: answers 202 with the queued task (200 for an idempotent replay)."""
        record = _submit(request)
        data = TaskDetailSerializer(record, context=self.get_serializer_context()).data
        return Response(data, status=_accepted(record))

    def destroy(self, request, *args, **kwargs):
        """Cancel a task that has not started; 409 if it has."""
        record = self.get_object()
        try:
            record = services.task_cancel(user=request.user, task_id=record.pk)
        except services.TaskNotCancellable as exc:
            raise Conflict(str(exc)) from exc
        return Response(TaskDetailSerializer(record, context=self.get_serializer_context()).data)


class UsageView(APIView):
    """Your window count, weight and the level your next task would get."""

    def get(self, request):
        usage = selectors.user_usage(request.user)
        return Response(UsageSerializer(usage).data)


def json_not_found(request, exception=None):
    """Unknown routes answer in JSON too, like the API."""
    return JsonResponse({"detail": "Not found."}, status=404)


def json_server_error(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)
