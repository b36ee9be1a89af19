"""HTTP edges: parse, authorise, call a service or selector, shape the answer."""

import hmac
import uuid

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import reverse
from rest_framework import mixins, routers, status, viewsets
from rest_framework.exceptions import (
    APIException,
    ParseError,
    PermissionDenied,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from pqh_site.errors import RefusedError
from users_app.selectors import user_window

from ..ops import events, health, metrics
from ..selectors.detail import task_view
from ..selectors.tasks import task_get_for_user, task_list_for_user, task_poll_for_user
from ..services import actions, submission
from ..waits import links
from ..waits.params import BadWait, requested_wait
from . import openapi
from .parsers import StrictJSONParser
from .seed_shapes import seed_result_body
from .serializers import (
    SubmitSerializer,
    TaskDetailSerializer,
    TaskSerializer,
    UsageSerializer,
)


class ThrottleFirst:
    """Check the request rates right after authentication, before permissions and any work.

    DRF checks permissions first, so an anonymous request would get its 401 uncounted; here it
    counts against its address's rate (PQH_ANON_RATE) like every other request at the door.
    The rest is DRF's own APIView.initial.
    """

    def initial(self, request, *args, **kwargs):
        self.format_kwarg = self.get_format_suffix(**kwargs)
        neg = self.perform_content_negotiation(request)
        request.accepted_renderer, request.accepted_media_type = neg
        version, scheme = self.determine_version(request, *args, **kwargs)
        request.version, request.versioning_scheme = version, scheme
        self.perform_authentication(request)
        self.check_throttles(request)
        self.check_permissions(request)


class ServiceUnavailable(RefusedError):
    """503: the queue is full, or Redis or PostgreSQL cannot be reached; try again later."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


class UserCapExceeded(RefusedError):
    """429: the user already has as many tasks queued or running as they may."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "conflict"


def _words(detail) -> str:
    """A DRF error's detail as one line of plain words: `x: This field is required.`"""
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {_words(value)}" for field, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_words(item) for item in detail)
    return str(detail)


def _refused(request, reason: str, error: APIException) -> APIException:
    """Log and count a refused submission, and return the error that answers it."""
    events.event_refused(user=request.user, reason=reason, detail=_words(error.detail))
    return error


def _submit(request, *, position: bool = True):
    """Validate a submission body and hand it to task_submit; shared by both routes.

    Returns the accepted task, or the earlier one when the Idempotency-Key replays it
    (`record.replayed`): the routes answer 202, or 200 for a replay, in the same shape.
    `position`: the answer shows the queue position (POST /task's, the original's, does not).
    """
    try:
        serializer = SubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
    except (ParseError, UnsupportedMediaType, ValidationError) as exc:
        raise _refused(request, "invalid", exc) from exc
    claimed = serializer.validated_data.get("user_id")
    if claimed is not None and claimed not in (request.user.get_username(), str(request.user.pk)):
        raise _refused(
            request,
            "invalid",
            PermissionDenied("user_id must name you: you may only submit tasks as yourself"),
        )
    try:
        return submission.task_submit(
            user=request.user,
            x=serializer.validated_data["x"],
            idempotency_key=request.headers.get("Idempotency-Key"),
            position=position,
        )
    except submission.SubmissionRefused as exc:
        raise _refused(request, exc.reason, ValidationError({"x": [str(exc)]})) from exc
    except submission.InvalidIdempotencyKey as exc:
        raise _refused(request, exc.reason, ParseError(str(exc))) from exc
    except submission.IdempotencyConflict as exc:
        raise _refused(request, exc.reason, Conflict(str(exc))) from exc
    except submission.UserCapReached as exc:
        error = UserCapExceeded(
            str(exc),
            code=exc.reason,
            retry_after=exc.retry_after,
            limit=exc.limit,
            active=exc.active,
        )
        raise _refused(request, exc.reason, error) from exc
    except (submission.QueueFull, submission.QueueUnavailable) as exc:
        error = ServiceUnavailable(str(exc), code=exc.reason, retry_after=exc.retry_after)
        raise _refused(request, exc.reason, error) from exc


def _accepted(record) -> int:
    return status.HTTP_200_OK if record.replayed else status.HTTP_202_ACCEPTED


def _to_wait_server(request) -> HttpResponse | None:
    """A read that asks to wait (`?wait=S` or `Prefer: wait=S`, S > 0) is the wait server's:
    307 to the same path there (a thread of this server never waits). A bad wait is a 400; a
    wait of 0 is answered here at once."""
    try:
        seconds = requested_wait(
            request.query_params.get("wait"),
            request.headers.get("Prefer", ""),
            settings.PQH_WAIT_MAX_SECONDS,
        )
    except BadWait as exc:
        raise ParseError(str(exc)) from exc
    if not seconds:
        return None
    location = f"{settings.PQH_WAIT_URL}{request.get_full_path()}"
    detail = f"waits are answered by the wait server: ask {location}"
    response = Response({"detail": detail, "wait_url": location}, status=307)
    response["Location"] = location
    return response


def _parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


class SeedTaskView(ThrottleFirst, APIView):
    """POST /task: the original project's submission route."""

    parser_classes = [StrictJSONParser]  # as the original: a JSON body only

    @openapi.seed_submit
    def post(self, request):
        # A replay answers 200 with the original 202's body: every key of it is fixed at
        # submission. It has no queue position: the fair queue is not asked to count it.
        record = _submit(request, position=False)
        result_url = reverse("result", args=[record.pk])
        return Response(
            {
                "task_id": str(record.pk),
                "result_url": result_url,
                "user_id": request.user.get_username(),
                "level": record.level,
                "wait_url": links.wait_url(result_url),
                "events_url": links.events_url(record.pk),
            },
            status=_accepted(record),
        )


class SeedResultView(ThrottleFirst, APIView):
    """GET /result/<task_id>: the original project's polling route."""

    @openapi.seed_result
    def get(self, request, task_id: str):
        if redirect := _to_wait_server(request):
            return redirect
        pk = _parse_uuid(task_id)
        poll = task_poll_for_user(user=request.user, task_id=pk)
        if poll is None:
            raise Http404
        return Response(seed_result_body(pk, poll))


class TaskEventsView(ThrottleFirst, APIView):
    """GET /api/tasks/<id>/events on the web server: the stream is the wait server's (307)."""

    def get(self, request, task_id: str):
        pk = _parse_uuid(task_id)
        if task_get_for_user(user=request.user, task_id=pk) is None:
            raise Http404  # another user's task is not found here either
        location = links.events_url(pk)
        detail = f"a task's events are streamed by the wait server: ask {location}"
        response = Response({"detail": detail, "events_url": location}, status=307)
        response["Location"] = location
        return response


@openapi.tasks
class TaskViewSet(
    ThrottleFirst,
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
        return task_list_for_user(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return SubmitSerializer
        if self.action == "list":
            return TaskSerializer
        return TaskDetailSerializer

    def get_object(self):
        record = task_get_for_user(
            user=self.request.user, task_id=_parse_uuid(self.kwargs["task_id"])
        )
        if record is None:
            raise Http404
        return record

    def create(self, request, *args, **kwargs):
        """Submit a task: answers 202 with the queued task; an idempotent replay answers 200
        with the task as it is now, as a GET of it would (its status may have moved on)."""
        record = _submit(request)
        # A new task's start estimate is left to a poll (two queries off the hot path); a
        # replay is rare and shows what a GET shows.
        view = task_view(record, estimate=record.replayed)
        data = TaskDetailSerializer(view, context=self.get_serializer_context()).data
        return Response(data, status=_accepted(record))

    def destroy(self, request, *args, **kwargs):
        """Cancel a task that has not started; 409 if it has."""
        record = self.get_object()
        try:
            record = actions.task_cancel(user=request.user, task_id=record.pk)
        except actions.TaskNotCancellable as exc:
            raise Conflict(str(exc)) from exc
        view = task_view(record)
        return Response(TaskDetailSerializer(view, context=self.get_serializer_context()).data)

    def retrieve(self, request, *args, **kwargs):
        """One of your tasks, read in one pass (selectors.detail)."""
        if redirect := _to_wait_server(request):
            return redirect
        view = task_view(self.get_object())
        return Response(TaskDetailSerializer(view, context=self.get_serializer_context()).data)


class UsageView(ThrottleFirst, APIView):
    """Your window count, weight and the level your next task would get."""

    @openapi.usage
    def get(self, request):
        return Response(UsageSerializer(user_window(request.user)).data)


class APIRootView(ThrottleFirst, routers.APIRootView):
    """The API: your tasks and your usage; its schema, and the docs that render it."""

    schema = APIView.schema  # DRF leaves the root out of schemas; it is a route like the others
    links = {"usage": "api-usage", "schema": "api-schema", "docs": "api-docs"}

    @openapi.api_root
    def get(self, request, *args, **kwargs):
        self.api_root_dict = {**self.api_root_dict, **self.links}
        return super().get(request, *args, **kwargs)


def healthz(request):
    """Liveness: the process answers. No I/O, no authentication."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: PostgreSQL, Redis and a live worker; 503 naming what failed otherwise."""
    checks = health.readiness()
    failed = [name for name, check in checks.items() if not check.ok]
    body = {
        "status": "unready" if failed else "ready",
        "failed": failed,
        "checks": {name: check.as_dict() for name, check in checks.items()},
    }
    return JsonResponse(body, status=503 if failed else 200)


class MetricsReader(BasePermission):
    """Staff users, or a scraper that sends `Authorization: Bearer <PQH_METRICS_TOKEN>`."""

    def has_permission(self, request, view) -> bool:
        token = settings.PQH_METRICS_TOKEN
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if token and scheme.lower() == "bearer":
            return hmac.compare_digest(given.strip().encode(), token.encode())
        return bool(request.user and request.user.is_staff)


class JsonErrorsOnly(BaseContentNegotiation):
    """The Accept header picks the metrics format, not a DRF renderer: errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsView(ThrottleFirst, APIView):
    """Prometheus metrics of this host's web and worker processes, and the queue right now."""

    schema = None  # Prometheus text for scrapers, not part of the JSON API's schema

    permission_classes = [MetricsReader]
    content_negotiation_class = JsonErrorsOnly

    def get(self, request):
        body, content_type = metrics.metrics_exposition(accept=request.META.get("HTTP_ACCEPT", ""))
        return HttpResponse(body, content_type=content_type)
