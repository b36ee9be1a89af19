"""Refuse a request whose body or header fields are over the limits, before anything reads it."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from .errors import error_response


def oversized_header(meta: dict, *, limit: int) -> tuple[str, int] | None:
    """Return (name, size) of the first header field longer than `limit` bytes, or None.

    A field's size is counted as the server reads it: `Name: value`.
    """
    for key, value in meta.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not isinstance(value, str):
                continue
            name = key.removeprefix("HTTP_").replace("_", "-").title()
            size = len(name) + 2 + len(value)  # WSGI gives header values as latin-1 text
            if size > limit:
                return name, size
    return None


class RequestLimitsMiddleware(MiddlewareMixin):
    """A header field over PQH_MAX_HEADER_BYTES is a 431; a body over PQH_MAX_BODY_BYTES a 413.

    Django checks the body size only where it reads the body itself (forms); DRF's parsers read
    the stream, and file uploads are not counted at all. Checking the declared length here
    covers every route and parser. A body sent without a length (chunked) reaches Django as
    an empty body, so nothing unbounded gets through. Sync and async (MiddlewareMixin).
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        too_long = oversized_header(request.META, limit=settings.PQH_MAX_HEADER_BYTES)
        if too_long:
            name, size = too_long
            return error_response(
                431,
                f"the header field {name} is {size} bytes; "
                f"the limit is {settings.PQH_MAX_HEADER_BYTES} bytes per field",
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            # Django's own exception, so handler400 answers it (413) as it answers Django's.
            raise RequestDataTooBig(f"a body of {length} bytes is over DATA_UPLOAD_MAX_MEMORY_SIZE")
        return None
