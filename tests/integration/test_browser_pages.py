"""What a browser sees before logging in: the API's root says how to log in and where the docs
are (in HTML only: a program still gets a bare 401 in JSON), and every page has a favicon."""

import pytest
from django.test import Client

from tests.integration.test_json_errors import BROWSER, assert_json

pytestmark = pytest.mark.django_db

HINT = 'id="pqh-login-hint"'


@pytest.mark.parametrize("path", ["/api/", "/api/tasks/", "/api/usage/"])
def test_an_anonymous_browser_is_told_how_to_log_in_and_where_the_docs_are(path):
    response = Client().get(path, HTTP_ACCEPT=BROWSER)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert HINT in page
    assert f'href="/api-auth/login/?next={path}"' in page
    assert 'href="/api/docs/"' in page and 'href="/api/schema/"' in page
    assert "Authorization: Token &lt;key&gt;" in page


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_a_program_gets_the_401_and_nothing_more(accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = Client().get("/api/", **headers)
    body = assert_json(response, 401, "Authentication credentials were not provided.")
    assert body == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == "Token"


def test_a_logged_in_browser_sees_the_api_without_the_hint(client, alice):
    client.login(username="alice", password="pw-alice")
    response = client.get("/api/", HTTP_ACCEPT=BROWSER)
    assert response.status_code == 200
    page = response.content.decode()
    assert HINT not in page and "pqh API" in page


def test_the_favicon_is_served_from_the_sites_root():
    response = Client().get("/favicon.ico", HTTP_ACCEPT="image/avif,image/webp,*/*")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    icon = b"".join(response.streaming_content)
    assert icon[:4] == b"\x00\x00\x01\x00" and len(icon) < 2048  # an ICO, and a small one
