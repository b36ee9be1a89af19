"""Fuzzing from the schema (schemathesis): no 5xx, and every answer is what the schema says.

The requests go through the real WSGI application, to the real PostgreSQL and Redis, as an
authenticated user; the schema is the one served at /api/schema/. The number of cases is
bounded (FUZZ_EXAMPLES per operation and generation mode) to keep `make test` quick.
"""

import json
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pqh_site.wsgi import application
from tasks_app.models import TaskRecord

FUZZ_EXAMPLES = int(os.environ.get("PQH_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
schema.config.generation.update(
    modes=["positive", "negative"], max_examples=FUZZ_EXAMPLES, database="none"
)
CASES: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    if CASES:  # shown with -s: how many requests each operation got, by status
        print(f"\nfuzzing: {sum(CASES.values())} cases: {dict(sorted(CASES.items()))}")


@pytest.fixture(autouse=True)
def no_cap(settings):
    """Hundreds of submissions by one user: the per-user cap is tested elsewhere."""
    settings.PQH_USER_MAX_ACTIVE = 1_000_000


@pytest.fixture
def fuzz_token(transactional_db):
    """A user of the fuzzed API. Committed for real: the app runs outside a test transaction."""
    from tests.conftest import make_user

    return make_user("fuzzer")[1].key


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_to_its_schema(case, fuzz_token):
    response = case.call_and_validate(
        headers={"Authorization": f"Token {fuzz_token}"}, checks=CHECKS
    )
    CASES[f"{case.method} {case.path} {response.status_code}"] += 1


# --- x itself, from the full range of Unicode: stored exactly as sent, or refused naming x ---

ODD = ["\x00", "\x01", "\x1f", "\t", "\n", "\r", "\x7f", "\ud800", "\udbff", "\udc00", "\udfff"]
TEXT = st.text(st.one_of(st.characters(), st.sampled_from(ODD)), max_size=12)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def texts(value):
    """Every string and key in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from texts(item)


def storable(value) -> bool:
    """What PostgreSQL's jsonb and pqh accept: no surrogates, no controls but tab, LF, CR."""
    return not any(
        (ch < " " and ch not in "\t\n\r") or "\ud800" <= ch <= "\udfff"
        for text in texts(value)
        for ch in text
    )


def as_floats(value):
    """Numbers compared by value: jsonb gives 1e16 back as the integer it equals."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [as_floats(v) for v in value]
    return {k: as_floats(v) for k, v in value.items()}


@pytest.mark.django_db
@given(x=JSON)
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_any_json_x_is_stored_exactly_or_refused_naming_x(alice_client, x):
    body = json.dumps({"x": x})  # ASCII-escaped: NUL and surrogates travel as \u escapes
    response = alice_client.generic("POST", "/task", body, content_type="application/json")
    if storable(x):
        assert response.status_code == 202, response.content
        stored = TaskRecord.objects.get(pk=response.json()["task_id"]).input
        assert as_floats(stored) == as_floats(x)
    else:
        assert response.status_code == 400, response.content
        assert set(response.json()) == {"x"}


# --- real answers, not only the ones fuzzing reaches, against the schema ---


def test_real_answers_keep_to_the_schema(transactional_db, fuzz_token, monkeypatch):
    from django.contrib.auth import get_user_model
    from django_celery_results.models import TaskResult
    from werkzeug.test import Client

    client = Client(application)
    auth = {"Authorization": f"Token {fuzz_token}"}

    def check(method, template, url, **kwargs):
        response = client.open(url, method=method, headers=auth, **kwargs)
        schema[template][method].validate_response(response)
        return response

    for path in ("/task", "/api/tasks/"):
        assert check("POST", path, path, json={"x": {"a": [1, 2]}}).status_code == 202
        assert check("POST", path, path, json={"y": 1}).status_code == 400
        assert check("POST", path, path, data="x", content_type="text/plain").status_code == 415
    assert check("GET", "/api/tasks/", "/api/tasks/").status_code == 200
    assert check("GET", "/api/usage/", "/api/usage/").status_code == 200
    assert check("GET", "/api/", "/api/").status_code == 200
    # Tasks in each state, written as the services and a worker leave them (a worker of the
    # integration tests may be running, so nothing here is queued for it to take).
    fuzzer = get_user_model().objects.get(username="fuzzer")
    states = {}
    for status in ("PENDING", "STARTED", "SUCCESS", "FAILURE", "REVOKED"):
        record = TaskRecord.objects.create(
            user=fuzzer, level=1, weight=1, count_before=1, input="foo", status=status
        )
        states[status] = str(record.pk)
    TaskResult.objects.create(
        task_id=states["SUCCESS"], status="SUCCESS", result='{"input_x": "foo"}'
    )
    TaskResult.objects.create(
        task_id=states["FAILURE"],
        status="FAILURE",
        result='{"exc_type": "ValueError", "exc_message": ["bad input"]}',
    )
    for status, task_id in states.items():
        seed = check("GET", "/result/{task_id}", f"/result/{task_id}")
        assert seed.get_json()["task_status"] == status
        detail = check("GET", "/api/tasks/{task_id}/", f"/api/tasks/{task_id}/")
        assert detail.get_json()["status"] == status
    assert check("GET", "/result/{task_id}", f"/result/{states['FAILURE']}").get_json()[
        "task_result"
    ] == {"error": "ValueError", "message": "bad input"}
    cancel = f"/api/tasks/{states['PENDING']}/"
    assert check("DELETE", "/api/tasks/{task_id}/", cancel).get_json()["status"] == "REVOKED"
    assert check("DELETE", "/api/tasks/{task_id}/", cancel).status_code == 409

    def down(*args, **kwargs):
        raise ConnectionError("Connection refused")

    monkeypatch.setattr("fairqueue.queue.FairQueue.add", down)
    for path in ("/task", "/api/tasks/"):
        refused = check("POST", path, path, json={"x": 1})
        assert refused.status_code == 503
        assert refused.get_json()["code"] == "unavailable"
        assert refused.headers["Retry-After"] == "5"
