"""The worker's two statements: the claim and the finish, one SQL statement each.

A task's claim and its end are the only SQL a worker runs for it (docs/performance.md, "The
worker path"). Each is a single statement, so it commits or not as a whole, with no BEGIN,
COMMIT or savepoint around it:

- the claim: an `UPDATE … RETURNING` of the row, with its user and the user's weight row read
  in the same statement (a data-modifying CTE, joined);
- the finish: an `UPDATE` of the row, conditional on this delivery's claim, and the stored
  result written through django-celery-results' table (`INSERT … ON CONFLICT DO UPDATE`, a
  progress report may have stored one already) from what the update returned, so the result is
  stored only if the row was this delivery's to end, and both or neither are written.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection
from django_celery_results.models import TaskResult

from pqh_site.celery import app as celery_app
from users_app.models import Profile

from ..models import TaskRecord

_TASKS = TaskRecord._meta.db_table
_RESULTS = TaskResult._meta.db_table
_USER = get_user_model()
_PROFILE_FIELDS = [f.attname for f in Profile._meta.concrete_fields]
_USER_FIELDS = ["id", _USER.USERNAME_FIELD]

_CLAIM = f"""
WITH claimed AS (
    UPDATE {_TASKS}
    SET status = 'STARTED', started_at = %(now)s, worker = %(worker)s,
        attempts = CASE WHEN status = 'STARTED' AND started_at = %(now)s AND worker = %(worker)s
                        THEN attempts ELSE attempts + 1 END
    WHERE task_id = %(id)s
      AND (status = ANY(%(allowed)s)
           OR (status = 'STARTED' AND started_at = %(now)s AND worker = %(worker)s))
    RETURNING *
)
SELECT claimed.*,
       u.{_USER._meta.get_field(_USER.USERNAME_FIELD).column} AS claim_username,
       {", ".join(f"p.{Profile._meta.get_field(n).column} AS claim_profile_{n}" for n in _PROFILE_FIELDS)}
FROM claimed
JOIN {_USER._meta.db_table} u ON u.{_USER._meta.pk.column} = claimed.user_id
LEFT JOIN {Profile._meta.db_table} p ON p.user_id = claimed.user_id
"""


def claim(*, task_id: str, worker: str, allowed: list[str], now: datetime) -> TaskRecord | None:
    """Move the task to STARTED for this delivery; the row with its user, or None.

    The row is taken if its status is in `allowed`, or if it already carries this claim (the
    same `now` and `worker`: a retry after a lost COMMIT finds its own claim, `attempts` counted
    once).
    """
    params = {"id": task_id, "worker": worker, "allowed": allowed, "now": now}
    record = next(iter(TaskRecord.objects.raw(_CLAIM, params)), None)
    if record is None:
        return None
    user = _USER.from_db(DEFAULT_DB_ALIAS, _USER_FIELDS, [record.user_id, record.claim_username])
    profile_values = [getattr(record, f"claim_profile_{n}") for n in _PROFILE_FIELDS]
    if profile_values[0] is None:
        _USER.profile.related.set_cached_value(user, None)  # no weight row: the default
    else:
        user.profile = Profile.from_db(DEFAULT_DB_ALIAS, _PROFILE_FIELDS, profile_values)
    record.user = user
    return record


_RESULT_COLUMNS = (
    "task_id",
    "status",
    "result",
    "traceback",
    "meta",
    "content_encoding",
    "content_type",
    "periodic_task_name",
    "task_name",
    "task_args",
    "task_kwargs",
    "worker",
)
_FINISH = f"""
WITH ended AS (
    UPDATE {_TASKS} SET status = %(status)s, finished_at = %(now)s, run_seconds = %(run)s
    WHERE task_id = %(id)s AND status = 'STARTED' AND started_at = %(started)s
    RETURNING task_id
)
INSERT INTO {_RESULTS} ({", ".join(_RESULT_COLUMNS)}, date_created, date_done)
SELECT {", ".join(f"%({c})s" for c in _RESULT_COLUMNS)}, %(now)s, %(now)s FROM ended
ON CONFLICT (task_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _RESULT_COLUMNS if c != "task_id")},
    date_done = EXCLUDED.date_done
RETURNING 1
"""


def result_fields(
    task_id: str, result: Any, status: str, traceback: str | None, request: Any
) -> dict[str, Any]:
    """The columns django-celery-results' backend stores for this end (its store_result).

    Encoded by the backend itself (Celery's exception preparation and serializer, the extended
    fields of CELERY_RESULT_EXTENDED); only the write is ours. Raises kombu's EncodeError for a
    result JSON cannot hold. tests/integration/test_claim_and_finish.py compares the row with
    the backend's own.
    """
    backend = celery_app.backend
    content_type, content_encoding, encoded = backend.encode_content(
        backend.encode_result(result, status)
    )
    meta = {
        **backend._get_meta_from_request(request),
        "children": backend.current_task_children(request),
    }
    _, _, encoded_meta = backend.encode_content(meta)
    fields = {
        "task_id": task_id,
        "status": status,
        "result": encoded,
        "traceback": traceback,
        "meta": encoded_meta,
        "content_encoding": content_encoding,
        "content_type": content_type,
    }
    fields.update(backend._get_extended_properties(request, traceback))
    return fields


def finish(
    *,
    record: TaskRecord,
    status: str,
    fields: dict[str, Any],
    now: datetime,
    run_seconds: float | None,
) -> bool:
    """End the row (if this delivery's claim still holds it) and store its result; True if so."""
    params = {
        **fields,
        "id": record.pk,
        "started": record.started_at,
        "now": now,
        "run": run_seconds,
    }
    with connection.cursor() as cursor:
        cursor.execute(_FINISH, params)
        return cursor.fetchone() is not None
