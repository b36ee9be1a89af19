"""Errors in JSON: Django's error views, the CSRF failure view, and a fallback for the rest."""

import re

from django.conf import settings
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.views import csrf, defaults
from rest_framework import status
from rest_framework.exceptions import APIException, Throttled

# The API's routes answer JSON whoever asks; elsewhere (the admin, the login page) a browser
# that prefers HTML keeps Django's HTML pages.
API_PATH = re.compile(r"^/(?:task/?$|result/|api/)")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"
    default_code = "payload_too_large"


class RefusedError(APIException):
    """An API error whose body names a `code` (and any other fields), with `Retry-After`.

    `raise RefusedError("the queue is full", code="queue_full", retry_after=30)` answers
    `{"detail": "the queue is full", "code": "queue_full"}` with `Retry-After: 30`.
    """

    def __init__(self, detail: str, *, code: str, retry_after: int | None = None, **fields):
        super().__init__(detail, code)
        self.fields = {"code": code, **fields}
        self.retry_after = retry_after


def refusal_body(*, detail: str, code: str) -> dict[str, str]:
    """The JSON body of a refusal at the door (pqh_site/door.py): what and why, in words."""
    return {"detail": detail, "code": code}


# What a 429 of a request rate says when the throttle left no words of its own.
THROTTLED_DETAIL = "too many requests; retry after the seconds in Retry-After"


def api_exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """DRF's handler, plus the extra fields and the Retry-After header of a RefusedError, and
    the door's body for a request rate's 429 (DRF's Throttled; DRF sets its Retry-After)."""
    # Imported here: rest_framework.views loads the parsers, which import this module.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, RefusedError):
        response.data = {**response.data, **exc.fields}
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
    if response is not None and isinstance(exc, Throttled):
        detail = getattr(context.get("request"), "pqh_refusal_detail", None) or THROTTLED_DETAIL
        response.data = refusal_body(detail=detail, code="rate_limited")
    return response


def wants_json(request: HttpRequest) -> bool:
    """True for the API's routes, and elsewhere for any client that does not prefer HTML."""
    if API_PATH.match(request.path_info):
        return True
    return request.get_preferred_type(["application/json", "text/html"]) != "text/html"


def error_response(status_code: int, detail: str) -> JsonResponse:
    """The one shape of an error that DRF did not render: {"detail": "..."}."""
    return JsonResponse({"detail": detail}, status=status_code)


def _bad_request_detail(exception: Exception | None) -> tuple[int, str]:
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, f"the request body is over the limit of {limit} bytes"
    if isinstance(exception, DisallowedHost):
        return 400, "the Host header names a host this server does not serve"
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return 400, "the form has too many fields or files"
    return 400, "bad request"


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: Django's SuspiciousOperation family, and a body over the size limit (413)."""
    status_code, detail = _bad_request_detail(exception)
    if wants_json(request):
        return error_response(status_code, detail)
    response = defaults.bad_request(request, exception)
    response.status_code = status_code
    return response


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: a Django PermissionDenied raised outside DRF."""
    if wants_json(request):
        return error_response(403, "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: unknown routes, as DRF says it for unknown objects."""
    if wants_json(request):
        return error_response(404, "Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: never a traceback, never an HTML page for an API client."""
    if wants_json(request):
        return error_response(500, "Internal server error.")
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form post without a valid CSRF token (DRF words its own alike)."""
    if wants_json(request):
        return error_response(403, f"CSRF Failed: {reason}")
    return csrf.csrf_failure(request, reason)


class JSONErrorMiddleware(MiddlewareMixin):
    """Give an error response that nothing rendered as JSON (e.g. a 405 of a plain Django view)
    the JSON shape, for clients that want JSON. DRF's own responses are left as negotiated.
    Sync and async (MiddlewareMixin)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            response.status_code < 400
            or response.get("Content-Type", "").startswith("application/json")
            or hasattr(response, "accepted_renderer")  # DRF negotiated it (JSON or browsable)
            or response.streaming
            or not wants_json(request)
        ):
            return response
        if response.status_code == 405:
            detail = f'Method "{request.method}" not allowed.'
        else:
            detail = f"{response.reason_phrase}."
        converted = error_response(response.status_code, detail)
        for name, value in response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                converted[name] = value
        converted.cookies = response.cookies
        return converted
