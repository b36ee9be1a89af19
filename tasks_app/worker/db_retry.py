"""Retrying one database step of a worker while PostgreSQL is unreachable, up to a deadline."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection
from kombu.utils.functional import retry_over_time

from pqh_site.outages import first_line

logger = logging.getLogger(__name__)

# What Django raises when the server is down, refuses connections ("too many clients"), or
# drops one mid-query. Anything else (a bug, bad data) is not retried.
DATABASE_ERRORS = (OperationalError, InterfaceError)

T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL stayed unreachable until the step's deadline."""


def db_retry(step: Callable[[], T], *, what: str, seconds: float) -> T:
    """Run `step`; while PostgreSQL is unreachable, reconnect and run it again, for `seconds`.

    Only for steps that are safe to repeat: one transaction (rolled back when it failed) or an
    idempotent write. Raises DatabaseUnavailable when the time is up.
    """
    deadline = time.monotonic() + max(seconds, 0.0)

    def errback(exc: BaseException, intervals, retries: int) -> float:
        # A connection that failed is useless; the next attempt opens a new one.
        connection.close()
        logger.warning("%s: PostgreSQL is unavailable (%s); retrying", what, first_line(exc))
        return max(0.0, min(next(intervals), deadline - time.monotonic()))

    try:
        return retry_over_time(
            step,
            DATABASE_ERRORS,
            errback=errback,
            max_retries=None if seconds > 0 else 0,
            interval_start=0.25,
            interval_step=0.5,
            interval_max=2.0,
            timeout=seconds if seconds > 0 else None,
        )
    except DATABASE_ERRORS as exc:
        connection.close()
        raise DatabaseUnavailable(
            f"{what}: PostgreSQL unavailable for {seconds:.0f} s ({first_line(exc)})"
        ) from exc
