"""What a request asks to wait for: pure parsing, shared by the web and the wait servers.

`?wait=S` wins over `Prefer: wait=S` (RFC 7240); S is seconds from 0 to a limit. No Django here:
the callers pass the query value, the header and the limit, and turn BadWait into a 400.
"""


class BadWait(ValueError):
    """The wait asked for is not a number of seconds within the limit; str() says so."""


def requested_wait(query: str | None, prefer: str, limit: float) -> float | None:
    """The seconds asked for, or None if the request asks for no wait at all.

    >>> requested_wait("2.5", "", 30)
    2.5
    >>> requested_wait(None, "respond-async, wait=10", 30)
    10.0
    >>> requested_wait(None, "", 30) is None
    True
    """
    raw = query
    if raw is None:
        for preference in prefer.split(","):
            name, _, value = preference.strip().partition("=")
            if name.strip().lower() == "wait":
                raw = value.strip().strip('"')
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds <= limit:  # NaN and infinities fail too
        raise BadWait(f"wait must be a number of seconds from 0 to {limit:g}, got {raw!r}")
    return seconds
