"""HTTP edges: parse, authorise, call a service or selector, shape the answer."""

import uuid

from django.http import Http404
from django.urls import reverse
from rest_framework import mixins, routers, status, viewsets
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from pqh_site.errors import RefusedError

from . import openapi, selectors, services
from .parsers import StrictJSONParser
from .serializers import SubmitSerializer, TaskDetailSerializer, TaskSerializer, UsageSerializer


class ServiceUnavailable(RefusedError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, detail: str = "the queue is unavailable; try again shortly"):
        # Redis blinks are short: a few seconds is worth waiting before a retry.
        super().__init__(detail, code="unavailable", retry_after=5)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "conflict"


def _submit(request):
    """Validate a submission body and hand it to task_submit; shared by both routes."""
    serializer = SubmitSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    claimed = serializer.validated_data.get("user_id")
    if claimed is not None and claimed not in (request.user.get_username(), str(request.user.pk)):
        raise PermissionDenied("user_id must name you: you may only submit tasks as yourself")
    try:
        return services.task_submit(user=request.user, x=serializer.validated_data["x"])
    except services.SubmissionRefused as exc:
        raise ValidationError({"x": [str(exc)]}) from exc
    except services.QueueUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from exc


def _parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


class SeedTaskView(APIView):
    """POST /task: the original project's submission route."""

    parser_classes = [StrictJSONParser]  # as the original: a JSON body only

    @openapi.seed_submit
    def post(self, request):
        record = _submit(request)
        return Response(
            {
                "task_id": str(record.pk),
                "result_url": reverse("result", args=[record.pk]),
                "user_id": request.user.get_username(),
                "level": record.level,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class SeedResultView(APIView):
    """GET /result/<task_id>: the original project's polling route."""

    @openapi.seed_result
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


@openapi.tasks
class TaskViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Your tasks: list (newest first), submit, retrieve, and cancel one that has not started."""

    lookup_field = "pk"
    lookup_url_kwarg = "task_id"
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
            user=self.request.user, task_id=_parse_uuid(self.kwargs["task_id"])
        )
        if record is None:
            raise Http404
        return record

    def create(self, request, *args, **kwargs):
        """Submit a task: answers 202 with the queued task."""
        record = _submit(request)
        data = TaskDetailSerializer(record, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED)

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

    @openapi.usage
    def get(self, request):
        usage = selectors.user_usage(request.user)
        return Response(UsageSerializer(usage).data)


class APIRootView(routers.APIRootView):
    """The API: your tasks and your usage; its schema, and the docs that render it."""

    schema = APIView.schema  # DRF leaves the root out of schemas; it is a route like the others
    links = {"usage": "api-usage", "schema": "api-schema", "docs": "api-docs"}

    @openapi.api_root
    def get(self, request, *args, **kwargs):
        self.api_root_dict = {**self.api_root_dict, **self.links}
        return super().get(request, *args, **kwargs)
