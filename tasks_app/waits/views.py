"""The wait server's routes: a task's poll or detail that waits for its end, and its events.

- `GET /result/<id>?wait=S` and `GET /api/tasks/<id>/?wait=S` (or `Prefer: wait=S`, RFC 7240):
  the same body as the web server's, as soon as the task is SUCCESS, FAILURE or REVOKED, or
  after S seconds (0 to PQH_WAIT_MAX_SECONDS) with the state it has then; 200 either way, and
  `Preference-Applied: wait=S`.
- `GET /api/tasks/<id>/events`: Server-Sent Events: the current state on connect (unless the
  client's Last-Event-ID says it has seen it), then `started`, `progress` and the final `ended`,
  each with the task's detail as data; a heartbeat comment every PQH_STREAM_HEARTBEAT_SECONDS;
  closed after `ended`, or after PQH_STREAM_SECONDS (the client reconnects).

The same authentication (token, session, basic where on) and the same read rate as the web
server's; only your own tasks (404 otherwise). No thread waits: a request holds an asyncio
task and an event of the process's Hub; PostgreSQL is read (in a thread, briefly) when the
request starts and each time a notice says the task moved.
"""

import time
import uuid
from collections import Counter
from contextlib import contextmanager
from typing import Any

from asgiref.sync import sync_to_async
from celery import states
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from pqh_site.core import core
from pqh_site.errors import THROTTLED_DETAIL, error_response, refusal_body
from users_app.authentication import ProfileTokenAuthentication, RememberedBasicAuthentication
from users_app.throttling import ReadRateThrottle

from ..api.seed_shapes import seed_result_body
from ..api.serializers import TaskDetailSerializer
from ..models import FINAL_STATES
from ..selectors.detail import TaskView, task_view
from ..selectors.tasks import task_get_for_user, task_poll_for_user
from ..worker.progress import PROGRESS
from . import params
from .hub import Hub

_hub: Hub | None = None
_open: Counter = Counter()  # waits and streams open in this process, by user id


def hub() -> Hub:
    """This process's hub (one subscription), made on first use."""
    global _hub
    if _hub is None:
        the_core = core()
        _hub = Hub(the_core.config.redis_url, the_core.keys.notices)
    return _hub


class Refused(Exception):
    """An answer other than the task: a 4xx or 503 in JSON."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("detail", ""))
        self.status, self.body, self.headers = status, body, headers or {}

    def response(self) -> HttpResponse:
        response = HttpResponse(
            JSONRenderer().render(self.body), status=self.status, content_type="application/json"
        )
        for name, value in self.headers.items():
            response[name] = value
        return response


def requested_wait(request) -> float:
    """The wait asked for (params.requested_wait): 0 without one; a 400 if it is bad."""
    try:
        seconds = params.requested_wait(
            request.GET.get("wait"),
            request.headers.get("Prefer", ""),
            settings.PQH_WAIT_MAX_SECONDS,
        )
    except params.BadWait as exc:
        raise Refused(400, {"detail": str(exc)}) from None
    return seconds or 0.0


def _authenticate(request):
    """The user the request authenticates as (DRF's classes, as the web server's), or None."""
    classes = [ProfileTokenAuthentication]
    if settings.PQH_BASIC_AUTH:
        classes.append(RememberedBasicAuthentication)
    for cls in classes:
        found = cls().authenticate(request)
        if found is not None:
            return found[0]
    return None


def _throttle(request, user) -> None:
    request.user = user
    throttle = ReadRateThrottle()
    if not throttle.allow_request(request, None):
        detail = getattr(request, "pqh_refusal_detail", None) or THROTTLED_DETAIL
        retry = max(1, int(-(-(throttle.wait() or 1) // 1)))
        raise Refused(
            429, refusal_body(detail=detail, code="rate_limited"), {"Retry-After": str(retry)}
        )


def _guarded(fn):
    """Run a sync step in a thread, on a connection an outage has not broken."""

    def run(*args, **kwargs):
        close_old_connections()
        return fn(*args, **kwargs)

    return sync_to_async(run, thread_sensitive=False)


@_guarded
def _who(request):
    try:
        return _authenticate(request)
    except exceptions.Throttled as exc:
        detail = getattr(request, "pqh_refusal_detail", None) or THROTTLED_DETAIL
        retry = {"Retry-After": str(int(exc.wait or 1))}
        raise Refused(429, refusal_body(detail=detail, code="rate_limited"), retry) from None
    except exceptions.AuthenticationFailed as exc:
        raise Refused(401, {"detail": str(exc.detail)}, {"WWW-Authenticate": "Token"}) from None


async def authenticated(request):
    """Authenticate and count the request against its user's read rate; Refused otherwise."""
    user = await _who(request)
    if user is None:
        session_user = await request.auser()
        user = session_user if session_user.is_authenticated else None
    if user is None:
        raise Refused(
            401,
            {"detail": "Authentication credentials were not provided."},
            {"WWW-Authenticate": "Token"},
        )
    await _guarded(_throttle)(request, user)
    return user


@contextmanager
def opened(user):
    """Count a wait or stream against the user's and the process's bounds for its lifetime."""
    retry = {"Retry-After": str(settings.PQH_RETRY_AFTER_SECONDS)}
    if sum(_open.values()) >= settings.PQH_WAIT_MAX_PER_PROCESS:
        raise Refused(
            503,
            {"detail": "this server holds as many waits as it may; try again shortly",
             "code": "busy"},
            retry,
        )  # fmt: skip
    if _open[user.pk] >= settings.PQH_WAIT_MAX_PER_USER:
        raise Refused(
            429,
            {"detail": f"you have {_open[user.pk]} waits and streams open; the limit is "
             f"{settings.PQH_WAIT_MAX_PER_USER}", "code": "too_many_waits"},
            retry,
        )  # fmt: skip
    _open[user.pk] += 1
    try:
        yield
    finally:
        _open[user.pk] -= 1
        if not _open[user.pk]:
            del _open[user.pk]


def _task_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Refused(404, {"detail": "Not found."}) from None


def _json(data: Any, *, waited: float | None, status: int = 200) -> HttpResponse:
    response = HttpResponse(
        JSONRenderer().render(data), status=status, content_type="application/json"
    )
    if waited is not None:
        response["Preference-Applied"] = f"wait={waited:g}"
    return response


@_guarded
def _poll(user, pk):
    return task_poll_for_user(user=user, task_id=pk)


@_guarded
def _view(user, pk, request) -> tuple[TaskView, dict] | None:
    record = task_get_for_user(user=user, task_id=pk)
    if record is None:
        return None
    view = task_view(record)
    return view, TaskDetailSerializer(view, context={"request": request}).data


async def _wait_for_end(waiter, read, is_final, seconds: float):
    """Read, then re-read on every notice until the answer is final or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    answer = await read()
    while answer is not None and not is_final(answer):
        if not await waiter.moved(deadline - time.monotonic()):
            if time.monotonic() >= deadline:
                break
            continue
        answer = await read()
    return answer


async def _waited(request, task_id: str, read, is_final, shape) -> HttpResponse:
    """Authenticate, read the task (`read(user, pk)`) and re-read it on each notice until
    `is_final` or the wait asked for has passed; answer `shape(pk, answer)`, or a 404."""
    try:
        seconds = requested_wait(request)
        user = await authenticated(request)
        pk = _task_id(task_id)
        with opened(user):
            async with hub().waiter(str(pk)) as waiter:
                answer = await _wait_for_end(waiter, lambda: read(user, pk), is_final, seconds)
    except Refused as refused:
        return refused.response()
    if answer is None:
        return Refused(404, {"detail": "Not found."}).response()
    return _json(shape(pk, answer), waited=seconds)


async def result(request, task_id: str) -> HttpResponse:
    """GET /result/<id>[?wait=S]: the original's poll, waiting up to S seconds for the end."""
    return await _waited(
        request,
        task_id,
        _poll,
        lambda poll: poll.status in FINAL_STATES,
        seed_result_body,
    )


async def detail(request, task_id: str) -> HttpResponse:
    """GET /api/tasks/<id>/[?wait=S]: the task's detail, waiting up to S seconds for the end."""
    return await _waited(
        request,
        task_id,
        lambda user, pk: _view(user, pk, request),
        lambda answer: answer[0].record.status in FINAL_STATES,
        lambda pk, answer: answer[1],
    )


def event_name(view: TaskView) -> tuple[str, str]:
    """(event, id) of the state a view shows: queued, started, progress (one id per report), or
    ended; a client that reconnects with the id as Last-Event-ID is not sent it again."""
    status = view.record.status
    if status in FINAL_STATES:
        return "ended", "ended"
    if view.status == PROGRESS:
        return "progress", f"progress-{view.progress.get('updated_at')}"
    if status == states.STARTED:
        return "started", "started"
    return "queued", "queued"


def _sse(event: str, event_id: str, data: Any) -> bytes:
    body = JSONRenderer().render(data).decode()
    return f"id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode()


async def events(request, task_id: str):
    """GET /api/tasks/<id>/events: the task's moves as Server-Sent Events."""
    try:
        user = await authenticated(request)
        pk = _task_id(task_id)
        first = await _view(user, pk, request)
        if first is None:
            raise Refused(404, {"detail": "Not found."})
        guard = opened(user)
        guard.__enter__()
    except Refused as refused:
        return refused.response()
    seen = request.headers.get("Last-Event-ID")

    async def stream():
        try:
            yield f"retry: {settings.PQH_STREAM_RETRY_MS}\n\n".encode()
            async with hub().waiter(str(pk)) as waiter:
                answer, last = first, seen
                deadline = time.monotonic() + settings.PQH_STREAM_SECONDS
                while True:
                    event, event_id = event_name(answer[0])
                    if event_id != last:
                        yield _sse(event, event_id, answer[1])
                        last = event_id
                    if event == "ended":
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    if await waiter.moved(min(settings.PQH_STREAM_HEARTBEAT_SECONDS, left)):
                        answer = await _view(user, pk, request) or answer
                    else:
                        yield b": heartbeat\n\n"
        finally:
            guard.__exit__(None, None, None)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy must pass each event on at once
    return response


async def healthz(request) -> HttpResponse:
    """Liveness of the wait server: the process answers. No I/O, no authentication."""
    return _json({"status": "ok", "waiting": hub().waiting}, waited=None)


def not_found(request, exception=None) -> HttpResponse:
    return error_response(404, "Not found.")
