"""PostgreSQL unreachable: answer 503 JSON with Retry-After instead of a 500 page."""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils.deprecation import MiddlewareMixin

from .outages import first_line

logger = logging.getLogger(__name__)


def database_unavailable_response() -> JsonResponse:
    """The answer to a request that PostgreSQL could not serve: try again shortly."""
    response = JsonResponse(
        {
            "detail": "the database is unavailable; try again shortly",
            "code": "unavailable",
        },
        status=503,
    )
    response["Retry-After"] = str(settings.PQH_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Turn a view's OperationalError/InterfaceError (server down, refusing, dropped) into 503.

    Writes are atomic, so a refused submission left nothing behind: task_submit takes its
    window entry back when the INSERT fails. Django drops the broken connection at the end of
    the request, and its health check reconnects on the next one once the server is back.
    Sync and async (MiddlewareMixin): the wait server runs it without a thread per request.
    """

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning(
            "%s %s: PostgreSQL unavailable: %s", request.method, request.path, first_line(exception)
        )
        return database_unavailable_response()
