"""The base of pqh's management commands: every error is one line, names the command that
fixes it, and exits non-zero (a missing or unmigrated database, an unreachable PostgreSQL or
Redis, and bad input alike)."""

import re
import shlex

import psycopg
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, ProgrammingError

PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"


def shell_word(text: str) -> str:
    """`text` as one word of a command line to copy (quoted if it must be)."""
    return shlex.quote(text) if text.isprintable() else repr(text)


def parse_whole_number(
    raw: str, *, name: str, minimum: int, maximum: int | None = None, example: str
) -> int:
    """Return the whole number `raw` names, or raise a one-line CommandError that says the rule
    and gives `example`, a command that works (a command's numbers are read as text, so a wrong
    one is this line rather than argparse's usage)."""
    text = raw.strip()
    number = int(text) if re.fullmatch(r"[0-9]+", text) else None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        rule = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise CommandError(f"{name} must be an integer {rule}, got {raw!r}: e.g. `{example}`")
    return number


def no_such_user(username: str, *, fix: str | None = None) -> CommandError:
    """The one line for a user name that names no user: `fix`, or where to see the names."""
    fix = fix or (
        "`manage.py queue_stats` lists the users with a live window (names are case-sensitive)"
    )
    return CommandError(f"no user named {username!r}: {fix}")


def postgres_address() -> str:
    db = settings.DATABASES["default"]
    return f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"


def first_line(exc: BaseException) -> str:
    """Return the line of a driver error that says what went wrong, without the noise."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # libpq puts the server's answer after the connection attempt: "… failed: FATAL:  database
    # "x" does not exist". Keep the server's words when there are any.
    text = lines[0]
    if "FATAL:" in text:
        text = text.split("FATAL:", 1)[1]
    return " ".join(text.split())


def is_unmigrated(exc: BaseException) -> bool:
    """True for the error of a query on a table that migrations have not created."""
    return isinstance(exc, ProgrammingError) and 'relation "' in str(exc)


def explain_postgres(exc: BaseException) -> str:
    """One line: what is wrong with PostgreSQL and the command that fixes it."""
    name = settings.DATABASES["default"]["NAME"]
    where = postgres_address()
    reason = first_line(exc)
    if "does not exist" in reason and f'"{name}"' in reason:
        return (
            f"the PostgreSQL database {name!r} does not exist at {where}; create it with "
            "`make run` or `manage.py bootstrap` (or set DATABASE_URL)"
        )
    if is_unmigrated(exc):
        return (
            f"the database {name!r} at {where} is not migrated ({reason}); run "
            "`manage.py bootstrap` or `manage.py migrate`"
        )
    return (
        f"PostgreSQL at {where} is unreachable ({reason}); start it with: {PG_START} "
        "(or set DATABASE_URL)"
    )


def explain_redis(exc: BaseException) -> str:
    """One line: Redis cannot be reached, and the command that starts it."""
    return (
        f"Redis at {settings.REDIS_URL} is unreachable ({first_line(exc)}); start it with: "
        f"{REDIS_START} (or set REDIS_URL)"
    )


class PqhCommand(BaseCommand):
    """A command that reports an unreachable or missing PostgreSQL or Redis in one line.

    Django prints a CommandError as one line on stderr and exits 1; anything else escapes as a
    traceback. Connection failures are not bugs of the command, so they become CommandErrors
    that name what is missing and how to fix it.
    """

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (OperationalError, psycopg.OperationalError) as exc:
            raise CommandError(explain_postgres(exc)) from None
        except ProgrammingError as exc:
            if not is_unmigrated(exc):
                raise
            raise CommandError(explain_postgres(exc)) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise CommandError(explain_redis(exc)) from None
