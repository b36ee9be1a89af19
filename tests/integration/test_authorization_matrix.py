"""Who may do what: every route and method, as the owner, another user, anonymous and staff.

One row per cell. `{mine}` is a task of alice (the owner) and `{waiting}` another of hers that
has not started; bob is "other". Authentication: a token, a session (with its CSRF token, or
without for `session-no-csrf`), HTTP basic, or none.
"""

import base64
import json
import re

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tasks_app.models import TaskRecord
from tasks_app.services import submission

pytestmark = pytest.mark.django_db

OWNER, OTHER, ANON, STAFF = "owner", "other", "anon", "staff"
TOKEN, SESSION, NO_CSRF, BASIC, NONE = "token", "session", "session-no-csrf", "basic", "none"
# Open to anyone; the code says whether a worker is up, which is not what this test is about.
READY = (200, 503)

MATRIX = [
    # The original's submission route, with and without a trailing slash.
    ("POST", "/task", OWNER, TOKEN, 202),
    ("POST", "/task", OWNER, BASIC, 202),
    ("POST", "/task", OWNER, SESSION, 202),
    ("POST", "/task", OWNER, NO_CSRF, 403),
    ("POST", "/task", OTHER, TOKEN, 202),
    ("POST", "/task", ANON, NONE, 401),
    ("GET", "/task", OWNER, TOKEN, 405),
    ("GET", "/task", ANON, NONE, 401),
    ("POST", "/task/", OWNER, TOKEN, 202),
    ("POST", "/task/", OWNER, SESSION, 202),
    ("POST", "/task/", ANON, NONE, 401),
    # The original's polling route.
    ("GET", "/result/{mine}", OWNER, TOKEN, 200),
    ("GET", "/result/{mine}", OWNER, BASIC, 200),
    ("GET", "/result/{mine}", OWNER, SESSION, 200),
    ("GET", "/result/{mine}", OTHER, TOKEN, 404),
    ("GET", "/result/{mine}", OTHER, SESSION, 404),
    ("GET", "/result/{mine}", OTHER, BASIC, 404),
    ("GET", "/result/{mine}", ANON, NONE, 401),
    ("GET", "/result/{mine}/", OWNER, TOKEN, 200),
    ("GET", "/result/{mine}/", OTHER, TOKEN, 404),
    ("GET", "/result/{mine}/", ANON, NONE, 401),
    ("POST", "/result/{mine}", OWNER, TOKEN, 405),
    ("DELETE", "/result/{mine}", OWNER, TOKEN, 405),
    ("DELETE", "/result/{mine}", ANON, NONE, 401),
    # The browsable API's root.
    ("GET", "/api/", OWNER, TOKEN, 200),
    ("GET", "/api/", OWNER, SESSION, 200),
    ("GET", "/api/", ANON, NONE, 401),
    ("POST", "/api/", OWNER, TOKEN, 405),
    # Your tasks.
    ("GET", "/api/tasks/", OWNER, TOKEN, 200),
    ("GET", "/api/tasks/", OWNER, SESSION, 200),
    ("GET", "/api/tasks/", OWNER, BASIC, 200),
    ("GET", "/api/tasks/", OTHER, TOKEN, 200),
    ("GET", "/api/tasks/", ANON, NONE, 401),
    ("POST", "/api/tasks/", OWNER, TOKEN, 202),
    ("POST", "/api/tasks/", OWNER, SESSION, 202),
    ("POST", "/api/tasks/", OWNER, NO_CSRF, 403),
    ("POST", "/api/tasks/", OWNER, BASIC, 202),
    ("POST", "/api/tasks/", ANON, NONE, 401),
    ("PUT", "/api/tasks/", OWNER, TOKEN, 405),
    ("PATCH", "/api/tasks/", OWNER, TOKEN, 405),
    ("DELETE", "/api/tasks/", OWNER, TOKEN, 405),
    # One task's events: the wait server streams them; the web server sends its owner there.
    ("GET", "/api/tasks/{mine}/events", OWNER, TOKEN, 307),
    ("GET", "/api/tasks/{mine}/events", OWNER, SESSION, 307),
    ("GET", "/api/tasks/{mine}/events", OTHER, TOKEN, 404),
    ("GET", "/api/tasks/{mine}/events", ANON, NONE, 401),
    # One task.
    ("GET", "/api/tasks/{mine}/", OWNER, TOKEN, 200),
    ("GET", "/api/tasks/{mine}/", OWNER, SESSION, 200),
    ("GET", "/api/tasks/{mine}/", OWNER, BASIC, 200),
    ("GET", "/api/tasks/{mine}/", OTHER, TOKEN, 404),
    ("GET", "/api/tasks/{mine}/", OTHER, SESSION, 404),
    ("GET", "/api/tasks/{mine}/", OTHER, BASIC, 404),
    ("GET", "/api/tasks/{mine}/", ANON, NONE, 401),
    ("DELETE", "/api/tasks/{waiting}/", OWNER, TOKEN, 200),
    ("DELETE", "/api/tasks/{waiting}/", OWNER, SESSION, 200),
    ("DELETE", "/api/tasks/{waiting}/", OWNER, BASIC, 200),
    ("DELETE", "/api/tasks/{waiting}/", OWNER, NO_CSRF, 403),
    ("DELETE", "/api/tasks/{waiting}/", OTHER, TOKEN, 404),
    ("DELETE", "/api/tasks/{waiting}/", OTHER, SESSION, 404),
    ("DELETE", "/api/tasks/{waiting}/", OTHER, BASIC, 404),
    ("DELETE", "/api/tasks/{waiting}/", ANON, NONE, 401),
    ("PUT", "/api/tasks/{mine}/", OWNER, TOKEN, 405),
    ("PATCH", "/api/tasks/{mine}/", OWNER, TOKEN, 405),
    ("PUT", "/api/tasks/{mine}/", OTHER, TOKEN, 405),
    ("PATCH", "/api/tasks/{mine}/", OTHER, SESSION, 405),
    ("PUT", "/api/tasks/{mine}/", ANON, NONE, 401),
    ("PATCH", "/api/tasks/{mine}/", ANON, NONE, 401),
    # Your usage.
    ("GET", "/api/usage/", OWNER, TOKEN, 200),
    ("GET", "/api/usage/", OWNER, SESSION, 200),
    ("GET", "/api/usage/", OWNER, BASIC, 200),
    ("GET", "/api/usage/", ANON, NONE, 401),
    ("POST", "/api/usage/", OWNER, TOKEN, 405),
    # The schema and its docs are public: the API's shape is no secret.
    ("GET", "/api/schema/", ANON, NONE, 200),
    ("GET", "/api/schema/", OWNER, TOKEN, 200),
    ("GET", "/api/docs/", ANON, NONE, 200),
    ("GET", "/api/docs/", OWNER, SESSION, 200),
    # The admin is staff only, and session only: a token does not open it.
    ("GET", "/admin/", STAFF, SESSION, 200),
    ("GET", "/admin/", OWNER, SESSION, 302),
    ("GET", "/admin/", OWNER, TOKEN, 302),
    ("GET", "/admin/", STAFF, TOKEN, 302),
    ("GET", "/admin/", STAFF, BASIC, 302),
    ("GET", "/admin/", ANON, NONE, 302),
    ("GET", "/admin/tasks_app/taskrecord/", STAFF, SESSION, 200),
    ("GET", "/admin/tasks_app/taskrecord/", OWNER, SESSION, 302),
    ("GET", "/admin/tasks_app/taskrecord/", ANON, NONE, 302),
    ("GET", "/admin/tasks_app/taskrecord/{mine}/change/", STAFF, SESSION, 200),
    ("GET", "/admin/tasks_app/taskrecord/{mine}/change/", OWNER, SESSION, 302),
    # Health is public and says nothing about users; readiness is 503 while no worker runs.
    ("GET", "/healthz", ANON, NONE, 200),
    ("GET", "/healthz/", OWNER, TOKEN, 200),
    ("GET", "/readyz", ANON, NONE, READY),
    ("GET", "/readyz/", ANON, NONE, READY),
    # Metrics name users: staff or the scraper's bearer token only.
    ("GET", "/metrics", STAFF, SESSION, 200),
    ("GET", "/metrics", STAFF, BASIC, 200),
    ("GET", "/metrics", OWNER, TOKEN, 403),
    ("GET", "/metrics", OWNER, SESSION, 403),
    ("GET", "/metrics", ANON, NONE, 401),
    ("GET", "/metrics/", ANON, NONE, 401),
    # The browsable API's login page.
    ("GET", "/api-auth/login/", ANON, NONE, 200),
    ("GET", "/api-auth/login/", OWNER, SESSION, 200),
]

SUBMITS = {("POST", "/task"), ("POST", "/task/"), ("POST", "/api/tasks/")}


@pytest.fixture
def world(alice, bob):
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root")
    mine = submission.task_submit(user=alice[0], x="alice's first")
    waiting = submission.task_submit(user=alice[0], x="alice's second")
    return {
        "users": {OWNER: alice, OTHER: bob, STAFF: (staff, None)},
        "ids": {"mine": str(mine.pk), "waiting": str(waiting.pk)},
    }


def client_as(persona: str, auth: str, world) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    if persona == ANON:
        return client
    user, token = world["users"][persona]
    password = f"pw-{user.username}"
    if auth == TOKEN:
        if token is None:
            from rest_framework.authtoken.models import Token

            token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    elif auth == BASIC:
        pair = base64.b64encode(f"{user.username}:{password}".encode()).decode()
        client.credentials(HTTP_AUTHORIZATION=f"Basic {pair}")
    else:
        assert client.login(username=user.username, password=password)
        if auth == SESSION:
            client.get("/api-auth/login/")  # sets the CSRF cookie, as a browser's first visit
            client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client


@pytest.mark.parametrize(
    ("method", "path", "persona", "auth", "expected"),
    MATRIX,
    ids=[f"{m} {p} {who}/{how} -> {code}" for m, p, who, how, code in MATRIX],
)
def test_authorization_matrix(world, method, path, persona, auth, expected):
    url = path.format(**world["ids"])
    client = client_as(persona, auth, world)
    body = {"x": "matrix"} if method in ("POST", "PUT", "PATCH") else None
    data = "" if body is None else json.dumps(body)
    response = client.generic(method, url, data, content_type="application/json")
    if expected == READY:
        assert response.status_code in READY, response.content[:300]
        assert response.json()["status"] in ("ready", "unready")
        return
    assert response.status_code == expected, response.content[:300]

    is_api = not url.startswith(("/admin/", "/api-auth/", "/api/docs/"))
    if expected >= 400 and is_api:
        assert set(response.json()) == {"detail"}
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
    if expected == 404:
        # Another user's task answers exactly like a task that does not exist.
        assert response.json() == {"detail": "Not found."}
    if expected == 302:
        assert response["Location"].startswith("/admin/login/")
    if (method, path) in SUBMITS:
        owner = world["users"][persona][0] if persona != ANON else None
        made = TaskRecord.objects.filter(input="matrix")
        assert [r.user for r in made] == ([owner] if expected == 202 else [])
    if method == "DELETE" and "{waiting}" in path:
        status = TaskRecord.objects.get(pk=world["ids"]["waiting"]).status
        assert status == ("REVOKED" if expected == 200 else "PENDING")
    if (method, path, expected) == ("GET", "/api/tasks/", 200):
        listed = {t["task_id"] for t in response.json()["results"]}
        assert (world["ids"]["mine"] in listed) == (persona == OWNER)


def test_every_route_of_the_api_is_in_the_matrix():
    from django.urls import get_resolver

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                if not route.startswith("admin/"):
                    yield from walk(pattern.url_patterns, route)
            else:
                yield "/" + route.replace("^", "").replace("$", "")

    covered = {path for _, path, *_ in MATRIX}
    normalised = {
        re.sub(r"\(\?P<task_id>[^)]*\)|<str:task_id>", "{mine}", route)
        for route in walk(get_resolver().url_patterns)
    }
    missing = {
        r
        for r in normalised
        if r not in covered and r.replace("{mine}", "{waiting}") not in covered
    }
    # The redirect at / and the logout route are the only ones left out on purpose.
    assert missing == {"/", "/api-auth/logout/"}


def test_logging_in_at_the_browsable_api_opens_a_session(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.get("/api-auth/login/")
    response = client.post(
        "/api-auth/login/",
        {
            "username": "alice",
            "password": "pw-alice",
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302
    assert client.get("/api/tasks/").status_code == 200
    wrong = APIClient()
    wrong.get("/api-auth/login/")
    response = wrong.post(
        "/api-auth/login/",
        {
            "username": "alice",
            "password": "nope",
            "csrfmiddlewaretoken": wrong.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert wrong.get("/api/tasks/").status_code == 401
