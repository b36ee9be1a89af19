"""Errors Django raises before or outside DRF answer in JSON; browsers keep HTML off the API."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from tasks_app.api import views

pytestmark = pytest.mark.django_db

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def assert_json(response, status: int, detail: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"}
    if detail is not None:
        assert body["detail"] == detail
    return body


def assert_html(response, status: int) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/no/such/route", "/api/nope/", "/result/", "/taskx"])
def test_unknown_routes_are_a_json_404(path):
    assert_json(Client().get(path), 404, "Not found.")


def test_unknown_api_routes_are_json_even_for_a_browser():
    assert_json(Client().get("/api/nope/", HTTP_ACCEPT=BROWSER), 404, "Not found.")


def test_a_browser_off_the_api_keeps_html_404():
    assert_html(Client().get("/no/such/route", HTTP_ACCEPT=BROWSER), 404)


@pytest.mark.parametrize("path", ["/api/tasks/", "/admin/login/", "/no/such/route"])
def test_a_host_not_allowed_is_a_json_400(path):
    response = Client().get(path, HTTP_HOST="evil.example")
    assert_json(response, 400, "the Host header names a host this server does not serve")
    assert b"ALLOWED_HOSTS" not in response.content


def test_a_500_is_json_without_a_traceback(alice, monkeypatch):
    def broken(user, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "user_window", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(alice[0])
    response = client.get("/api/usage/", HTTP_ACCEPT=BROWSER)
    assert_json(response, 500, "Internal server error.")
    assert b"secret internals" not in response.content


def test_a_405_of_the_api_is_json(alice_client):
    task = alice_client.post("/api/tasks/", {"x": 1}, format="json").json()
    for method in ("put", "patch"):
        response = getattr(alice_client, method)(f"/api/tasks/{task['task_id']}/", {"x": 2})
        assert_json(response, 405, f'Method "{method.upper()}" not allowed.')


def test_a_405_of_a_plain_django_view_is_json_for_api_clients():
    # Django's LogoutView takes POST only.
    response = Client().get("/api-auth/logout/", HTTP_ACCEPT="application/json")
    assert_json(response, 405, 'Method "GET" not allowed.')
    assert set(response["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    # A browser gets what Django gives it.
    browser = Client().get("/api-auth/logout/", HTTP_ACCEPT=BROWSER)
    assert browser.status_code == 405
    assert browser["Content-Type"].startswith("text/html")


def test_a_csrf_failure_is_json_for_api_clients_and_html_for_browsers(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/admin/login/", {"username": "alice", "password": "pw-alice"}, HTTP_ACCEPT="*/*"
    )
    body = assert_json(response, 403)
    assert body["detail"].startswith("CSRF Failed: CSRF cookie not set")
    browser = client.post("/admin/login/", {"username": "alice"}, HTTP_ACCEPT=BROWSER)
    assert_html(browser, 403)
    assert b"CSRF" in browser.content


def test_a_session_api_call_without_csrf_is_a_json_403(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="pw-alice")
    response = client.post("/api/tasks/", {"x": 1}, format="json")
    assert_json(response, 403)
    assert response.json()["detail"].startswith("CSRF Failed")


def test_a_django_permission_denied_is_json_for_api_clients(db):
    get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    client = Client()
    client.login(username="clerk", password="pw")
    assert_json(
        client.get("/admin/tasks_app/taskrecord/", HTTP_ACCEPT="application/json"),
        403,
        "You do not have permission to perform this action.",
    )
    assert_html(client.get("/admin/tasks_app/taskrecord/", HTTP_ACCEPT=BROWSER), 403)


def test_an_admin_form_over_the_size_limit_is_413_html_for_browsers(settings, db):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    client = Client()
    response = client.post("/admin/login/", {"username": "a" * 3000}, HTTP_ACCEPT=BROWSER)
    assert_html(response, 413)
    response = client.post("/admin/login/", {"username": "a" * 3000})
    assert_json(response, 413, "the request body is over the limit of 2000 bytes")


def test_the_browsable_api_still_renders_its_errors_in_html(alice):
    client = Client()
    client.login(username="alice", password="pw-alice")
    response = client.get("/api/tasks/00000000-0000-0000-0000-000000000000/", HTTP_ACCEPT=BROWSER)
    assert_html(response, 404)
    assert b"Not found." in response.content


def test_a_refusal_carries_its_code_fields_and_retry_after():
    from pqh_site.errors import RefusedError, api_exception_handler

    class UserCap(RefusedError):
        status_code = 429

    refusal = UserCap(
        "you have 3 tasks active; the limit is 3",
        code="user_cap",
        retry_after=30,
        limit=3,
        active=3,
    )
    response = api_exception_handler(refusal, {})
    assert response.status_code == 429
    assert response.data == {
        "detail": "you have 3 tasks active; the limit is 3",
        "code": "user_cap",
        "limit": 3,
        "active": 3,
    }
    assert response["Retry-After"] == "30"
