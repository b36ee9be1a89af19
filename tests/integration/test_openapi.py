"""The OpenAPI schema: valid, complete (every route, every error), and its docs page works offline."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SUBMIT_CODES = {"200", "202", "400", "401", "403", "409", "413", "415", "429", "503"}
OPERATIONS = {
    ("/task", "post"): SUBMIT_CODES,
    ("/result/{task_id}", "get"): {"200", "307", "400", "401", "404", "429"},
    ("/api/", "get"): {"200", "401", "429"},
    ("/api/tasks/", "get"): {"200", "401", "404", "429"},
    ("/api/tasks/", "post"): SUBMIT_CODES,
    ("/api/tasks/{task_id}/", "get"): {"200", "307", "400", "401", "404", "429"},
    ("/api/tasks/{task_id}/", "delete"): {"200", "401", "403", "404", "409", "429"},
    ("/api/usage/", "get"): {"200", "401", "429"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises jsonschema.ValidationError if not


def test_the_schema_generates_without_warnings():
    # drf-spectacular's own check: any guess it had to make about a view is a failure here.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


def test_the_schema_lists_every_route_and_method(schema):
    assert {(path, method) for path, method, _ in operations(schema)} == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_each_operation_documents_its_answers_with_examples(schema, path, method):
    operation = schema["paths"][path][method]
    responses = operation["responses"]
    assert set(responses) == OPERATIONS[path, method]
    for code, response in responses.items():
        media = response["content"]["application/json"]
        assert media["examples"], f"{method} {path} {code} has no example"
        if code >= "400":
            for example in media["examples"].values():
                value = example["value"]
                assert "detail" in value or all(isinstance(v, list) for v in value.values())
    assert operation["security"] == [{"tokenAuth": []}, {"cookieAuth": []}, {"basicAuth": []}]
    if method == "post":
        assert operation["requestBody"]["content"]["application/json"]["examples"]


@pytest.mark.parametrize("path", ["/result/{task_id}", "/api/tasks/{task_id}/"])
def test_reads_document_the_wait_and_where_it_is_answered(schema, path):
    operation = schema["paths"][path]["get"]
    (wait,) = [p for p in operation["parameters"] if p["name"] == "wait"]
    assert wait["in"] == "query" and wait["schema"]["type"] == "number"
    elsewhere = operation["responses"]["307"]["content"]["application/json"]
    assert set(elsewhere["schema"]["$ref"].rsplit("/", 1)[-1:]) == {"WaitElsewhere"}


@pytest.mark.parametrize("path", ["/task", "/api/tasks/"])
def test_submissions_document_idempotency_and_retry_after(schema, path):
    operation = schema["paths"][path]["post"]
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert set(headers) == {"Idempotency-Key"}
    assert headers["Idempotency-Key"].get("required", False) is False
    for code in ("429", "503"):
        assert operation["responses"][code]["headers"]["Retry-After"]["required"] is True
    replay = operation["responses"]["200"]["description"]
    said = "the original 202's body" if path == "/task" else "the task as it is now"
    assert said in replay
    refusals = schema["components"]["schemas"]
    assert refusals["UserCapError"]["required"] == ["active", "code", "detail", "limit"]
    assert refusals["UnavailableErrorCodeEnum"]["enum"] == ["queue_full", "unavailable"]


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_every_operation_documents_the_doors_429_with_retry_after(schema, path, method):
    refused = schema["paths"][path][method]["responses"]["429"]
    assert refused["headers"]["Retry-After"]["required"] is True
    codes = {
        e["value"]["code"] for e in refused["content"]["application/json"]["examples"].values()
    }
    assert {"rate_limited", "locked_out"} <= codes
    assert schema["components"]["schemas"]["DoorRefusalCodeEnum"]["enum"] == [
        "rate_limited",
        "locked_out",
    ]


def test_a_page_always_has_next_and_previous(schema, alice_client):
    page = schema["components"]["schemas"]["PaginatedTaskList"]
    assert page["required"] == ["count", "next", "previous", "results"]
    assert set(alice_client.get("/api/tasks/").json()) == set(page["required"])


@pytest.mark.parametrize("path", ["/task", "/api/tasks/"])
def test_submissions_are_offered_as_json_only(schema, path):
    # The browsable API's form still posts to /api/tasks/, but a client is told to send JSON: a
    # generated client offered form and multipart sends multipart, where `x` is only text.
    body = schema["paths"][path]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json"} and body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Submit"}


def test_the_docs_page_works_without_internet(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html and '"/api/schema/"' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert client.get(asset).status_code == 200, asset


def test_the_api_root_links_the_schema_and_the_docs(alice_client):
    links = alice_client.get("/api/").json()
    assert links == {
        "tasks": "http://testserver/api/tasks/",
        "usage": "http://testserver/api/usage/",
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/api/docs/",
    }
    page = alice_client.get("/api/", HTTP_ACCEPT="text/html")
    assert b'href="http://testserver/api/docs/"' in page.content


def test_the_404s_say_what_the_schema_and_the_readme_say(schema, alice_client):
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    listing = schema["paths"]["/api/tasks/"]["get"]["responses"]["404"]["content"]
    no_page = alice_client.get("/api/tasks/", {"page": 99})
    assert no_page.status_code == 404
    assert [e["value"] for e in listing["application/json"]["examples"].values()] == [
        no_page.json()
    ]
    assert f"| `404` | `{json.dumps(no_page.json())}` | `?page=` that is no page" in readme
    task = schema["paths"]["/api/tasks/{task_id}/"]["get"]["responses"]["404"]["content"]
    no_task = alice_client.get("/api/tasks/3f0c9a52-8a31-4c57-9a3e-5b8f0f4b2d17/")
    assert no_task.status_code == 404
    assert [e["value"] for e in task["application/json"]["examples"].values()] == [no_task.json()]
    assert f"| `404` | `{json.dumps(no_task.json())}` | no such route, no such task" in readme
