"""The gate repeats a refusal for identical requests before Django runs, and nothing else."""

import json

import pytest

from pqh_site import door


@pytest.fixture(autouse=True)
def empty_gate():
    door.forget_refusals()
    yield
    door.forget_refusals()


def app_called(calls):
    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"served"]

    return app


def call(gate, **environ):
    environ = {
        "REQUEST_METHOD": "GET",
        "REMOTE_ADDR": "203.0.113.1",
        "PATH_INFO": "/task",
        **environ,
    }
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(gate(environ, start_response))
    return answer["status"], answer["headers"], body


META = {"REMOTE_ADDR": "203.0.113.1", "HTTP_AUTHORIZATION": "Token abc", "REQUEST_METHOD": "GET"}


def test_a_remembered_refusal_is_answered_without_the_application():
    calls = []
    gate = door.DoorGate(app_called(calls))
    door.remember_refusal(
        META, reason="rate_read", detail="too many reads", code="rate_limited", retry_after=2.5
    )
    status, headers, body = call(gate, HTTP_AUTHORIZATION="Token abc", PATH_INFO="/result/1")
    assert status == "429 Too Many Requests" and calls == []
    assert headers["Retry-After"] == "3" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"detail": "too many reads", "code": "rate_limited"}


@pytest.mark.parametrize(
    "other",
    [
        {"HTTP_AUTHORIZATION": "Token other"},  # another credential
        {"HTTP_AUTHORIZATION": "Token abc", "REMOTE_ADDR": "203.0.113.2"},  # another address
        {"HTTP_AUTHORIZATION": "Token abc", "REQUEST_METHOD": "POST"},  # another kind
        {"HTTP_AUTHORIZATION": "Token abc", "PATH_INFO": "/healthz"},  # not the API
        {"HTTP_AUTHORIZATION": "Token abc", "PATH_INFO": "/admin/"},
    ],
)
def test_anything_but_the_identical_request_goes_through(other):
    calls = []
    gate = door.DoorGate(app_called(calls))
    door.remember_refusal(META, reason="rate_read", detail="d", code="c", retry_after=5)
    status, _, body = call(gate, **other)
    assert status == "200 OK" and body == b"served" and len(calls) == 1


def test_a_refusal_is_repeated_only_until_the_limit_would_let_it_in(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(door.time, "monotonic", lambda: clock[0])
    calls = []
    gate = door.DoorGate(app_called(calls))
    door.remember_refusal(META, reason="rate_read", detail="d", code="c", retry_after=0.5)
    assert call(gate, HTTP_AUTHORIZATION="Token abc")[0].startswith("429")
    clock[0] += 0.5
    assert call(gate, HTTP_AUTHORIZATION="Token abc")[0] == "200 OK"


def test_a_long_lockout_is_repeated_for_at_most_replay_seconds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(door.time, "monotonic", lambda: clock[0])
    gate = door.DoorGate(app_called([]))
    door.remember_refusal(
        META,
        reason="locked_out",
        detail="d",
        code="locked_out",
        retry_after=900,
        kinds=("read", "write"),
    )
    status, headers, _ = call(gate, HTTP_AUTHORIZATION="Token abc", REQUEST_METHOD="POST")
    assert status.startswith("429") and headers["Retry-After"] == "900"
    clock[0] += door.REPLAY_SECONDS
    # Past it the limit is asked again (an operator may have cleared the lockout meanwhile).
    assert call(gate, HTTP_AUTHORIZATION="Token abc")[0] == "200 OK"


def test_the_gate_counts_what_it_repeats():
    gate = door.DoorGate(app_called([]))
    door.remember_refusal(META, reason="rate_read", detail="d", code="c", retry_after=5)
    before = door.REFUSALS.labels(reason="rate_read")._value.get()
    for _ in range(3):
        call(gate, HTTP_AUTHORIZATION="Token abc")
    assert door.REFUSALS.labels(reason="rate_read")._value.get() == before + 3


def test_the_gate_remembers_a_bounded_number_of_refusals(monkeypatch):
    monkeypatch.setattr(door, "MAX_REMEMBERED", 10)
    for i in range(25):
        meta = {**META, "HTTP_AUTHORIZATION": f"Token {i}"}
        door.remember_refusal(meta, reason="rate_read", detail="d", code="c", retry_after=5)
    assert len(door._refusals) == 10
    assert door.replayed_refusal({**META, "HTTP_AUTHORIZATION": "Token 24", "PATH_INFO": "/task"})
