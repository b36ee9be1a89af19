"""Hostile submissions: each is a 4xx whose JSON says what is wrong, and nothing is recorded."""

import json

import pytest

from pqh_site.core import core
from tasks_app.models import TaskRecord

pytestmark = pytest.mark.django_db

ROUTES = ["/task", "/api/tasks/"]


def post_raw(client, path, body: bytes | str, content_type="application/json", **extra):
    if isinstance(body, str):
        body = body.encode()
    return client.generic("POST", path, body, content_type=content_type, **extra)


def assert_refused(response, status: int, *words: str, user) -> dict:
    """The answer is `status` with a JSON body naming `words`; no record, no window count."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    text = json.dumps(body)
    for word in words:
        assert word in text, text
    assert TaskRecord.objects.count() == 0
    assert core().windows.count(user_id=user.pk) == 0
    return body


def nested(depth: int) -> str:
    """A body whose outer object holds x nested `depth - 1` arrays deep: `depth` levels."""
    return '{"x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", ["malformed JSON", "line 1 column 2"]),
        ('{"x": 1', ["malformed JSON"]),
        ('{"x": 1} trailing', ["malformed JSON", "Extra data"]),
        ("", ["x", "required"]),
        ("[1, 2]", ["non_field_errors"]),
        ('"just a string"', ["non_field_errors"]),
        ('{"y": 1}', ["x", "This field is required."]),
    ],
)
def test_malformed_or_incomplete_json_is_a_400(alice, alice_client, path, body, words):
    assert_refused(post_raw(alice_client, path, body), 400, *words, user=alice[0])


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("depth", [33, 1000, 5000, 100_000])
def test_deep_nesting_is_a_400_naming_the_limit(alice, alice_client, path, depth):
    body = assert_refused(post_raw(alice_client, path, nested(depth)), 400, user=alice[0])
    assert body == {"detail": "JSON nests too deeply; the limit is 32 levels"}


def test_nesting_up_to_the_limit_is_accepted(alice_client):
    response = post_raw(alice_client, "/task", nested(32))
    assert response.status_code == 202
    stored = TaskRecord.objects.get().input
    depth = 0
    while isinstance(stored, list):
        stored, depth = (stored[0] if stored else None), depth + 1
    assert depth == 31  # the body's outer object is the 32nd level


def test_the_depth_limit_is_a_setting(alice, alice_client, settings):
    settings.PQH_MAX_JSON_DEPTH = 4
    assert post_raw(alice_client, "/task", nested(4)).status_code == 202
    response = post_raw(alice_client, "/task", nested(5))
    assert response.status_code == 400
    assert "the limit is 4 levels" in response.json()["detail"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        ('{"x": "a\\u0000b"}', "x:", "U+0000 at offset 1"),
        ('{"x": {"k": ["ok", "\\u0000"]}}', 'x[\\"k\\"][1]', "U+0000"),
        ('{"x": {"a\\u0000b": 1}}', "the key", "U+0000"),
        ('{"x": "bell\\u0007"}', "x:", "U+0007"),
        ('{"x": ["\\u001f"]}', "x[0]", "U+001F"),
        ('{"x": "\\ud800"}', "x:", "lone surrogate"),
        ('{"x": {"\\udfff": 1}}', "the key", "lone surrogate"),
    ],
)
def test_nul_control_characters_and_lone_surrogates_are_a_400_naming_where(
    alice, alice_client, path, body, where, what
):
    body = assert_refused(post_raw(alice_client, path, body), 400, where, what, user=alice[0])
    assert set(body) == {"x"}


def test_a_nul_in_user_id_is_a_400(alice, alice_client):
    response = post_raw(alice_client, "/task", '{"x": 1, "user_id": "ali\\u0000ce"}')
    assert_refused(response, 400, "user_id", "Null characters are not allowed.", user=alice[0])


def test_tab_newline_and_real_unicode_are_kept(alice_client):
    x = {"text": "line\tone\nline\r\ntwo", "emoji": "\U0001f600", "accents": "Ålesund ñ"}
    body = json.dumps({"x": x})  # ASCII-escaped, so the emoji travels as a surrogate pair
    assert "\\ud83d\\ude00" in body
    assert post_raw(alice_client, "/task", body).status_code == 202
    assert TaskRecord.objects.get().input == x


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"x": "caf\xe9"}', ["not valid UTF-8", "0xe9 at offset 10"]),
        (b'{"x": "\xff\xfe"}', ["not valid UTF-8"]),
        (b'{"x": "\xed\xa0\x80"}', ["not valid UTF-8"]),  # a surrogate encoded as UTF-8
        (b'\xef\xbb\xbf{"x": 1}', ["malformed JSON", "BOM"]),
    ],
)
def test_invalid_utf8_is_a_400(alice, alice_client, path, body, words):
    assert_refused(post_raw(alice_client, path, body), 400, *words, user=alice[0])


def test_a_declared_charset_does_not_change_the_decoding(alice, alice_client):
    response = post_raw(
        alice_client, "/task", b'{"x": "caf\xe9"}', "application/json; charset=latin-1"
    )
    assert_refused(response, 400, "not valid UTF-8", user=alice[0])


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"x": 1e400}', ["1e400", "out of range"]),
        ('{"x": [-1.5e999]}', ["out of range"]),
        ('{"x": NaN}', ["NaN is not JSON"]),
        ('{"x": Infinity}', ["Infinity is not JSON"]),
        ('{"x": -Infinity}', ["-Infinity is not JSON"]),
        ('{"x": ' + "9" * 5000 + "}", ["integer is too long", "limit is 4300 digits"]),
    ],
)
def test_numbers_json_cannot_carry_are_a_400(alice, alice_client, path, body, words):
    assert_refused(post_raw(alice_client, path, body), 400, *words, user=alice[0])


def test_large_but_representable_numbers_are_kept(alice_client):
    big = int("9" * 4300)
    body = '{"x": [' + str(big) + ", -" + str(big) + ", 1e308, 5e-324, 1e-400]}"
    assert post_raw(alice_client, "/task", body).status_code == 202
    stored = TaskRecord.objects.get().input
    assert stored[:2] == [big, -big]
    # jsonb keeps numbers as numeric: 1e308 comes back as the integer it equals.
    assert [float(v) for v in stored[2:]] == [1e308, 5e-324, 0.0]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", ""],
)
def test_the_original_route_takes_json_only(alice, alice_client, content_type):
    response = post_raw(alice_client, "/task", "x=1", content_type)
    body = assert_refused(response, 415, "Unsupported media type", user=alice[0])
    assert set(body) == {"detail"}


def test_the_api_refuses_text_with_415(alice, alice_client):
    response = post_raw(alice_client, "/api/tasks/", '{"x": 1}', "text/plain")
    assert_refused(response, 415, "Unsupported media type", user=alice[0])


def test_the_api_takes_a_form_whose_x_is_json_text(alice_client):
    response = alice_client.post("/api/tasks/", {"x": '{"prompt": "hi"}'})  # multipart
    assert response.status_code == 202
    urlencoded = post_raw(
        alice_client, "/api/tasks/", "x=%5B1%2C2%5D", "application/x-www-form-urlencoded"
    )
    assert urlencoded.status_code == 202
    assert sorted(map(json.dumps, TaskRecord.objects.values_list("input", flat=True))) == [
        "[1, 2]",
        '{"prompt": "hi"}',
    ]


@pytest.mark.parametrize(
    ("x", "words"),
    [
        ("{not json", ["malformed JSON"]),
        ("[" * 100_000 + "]" * 100_000, ["nests too deeply", "32 levels"]),
        ("NaN", ["NaN is not JSON"]),
        ('"a\\u0000b"', ["x:", "U+0000"]),
        ("", ["malformed JSON"]),
    ],
)
def test_form_text_gets_the_same_checks_as_a_json_body(alice, alice_client, x, words):
    response = alice_client.post("/api/tasks/", {"x": x})
    assert set(assert_refused(response, 400, *words, user=alice[0])) == {"x"}


def test_a_file_as_x_is_a_400(alice, alice_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("x.json", b'{"a": 1}', content_type="application/json")
    response = alice_client.post("/api/tasks/", {"x": upload})
    assert_refused(response, 400, "x", user=alice[0])


@pytest.mark.parametrize("path", ROUTES)
def test_a_body_over_the_limit_is_a_413(alice, alice_client, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = post_raw(alice_client, path, '{"x": "' + "a" * 3000 + '"}')
    body = assert_refused(response, 413, "over the limit of 2000 bytes", user=alice[0])
    assert set(body) == {"detail"}


def test_a_multipart_upload_over_the_limit_is_a_413(alice, alice_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    upload = SimpleUploadedFile("big.bin", b"\0" * 5000)
    response = alice_client.post("/api/tasks/", {"x": "1", "file": upload})
    assert_refused(response, 413, "over the limit of 2000 bytes", user=alice[0])


def test_the_parser_stops_reading_at_the_limit(alice, alice_client, settings):
    # A length that understates the body: the middleware lets it in, the parser reads no
    # further than the limit and refuses.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    from tasks_app.api.parsers import StrictJSONParser

    class Stream:
        read_sizes: list[int] = []

        def read(self, size=-1):
            self.read_sizes.append(size)
            return b" " * (size if size > 0 else 10**6)

    from rest_framework.exceptions import APIException

    with pytest.raises(APIException) as refused:
        StrictJSONParser().parse(Stream())
    assert refused.value.status_code == 413
    assert Stream.read_sizes == [2001]


def test_an_x_over_the_input_cap_is_still_a_400(alice, alice_client, settings):
    settings.PQH_MAX_INPUT_BYTES = 100
    response = post_raw(alice_client, "/task", json.dumps({"x": "a" * 200}))
    assert_refused(response, 400, "limit is 100 bytes", user=alice[0])


def test_a_header_field_over_the_limit_is_a_431(alice, alice_client):
    response = alice_client.get("/api/usage/", HTTP_X_PADDING="a" * 9000)
    assert response.status_code == 431
    assert response.json() == {
        "detail": "the header field X-Padding is 9011 bytes; the limit is 8192 bytes per field"
    }
    response = post_raw(alice_client, "/task", '{"x": 1}', HTTP_X_PADDING="a" * 9000)
    assert_refused(response, 431, "X-Padding", user=alice[0])
    assert alice_client.get("/api/usage/", HTTP_X_PADDING="a" * 8000).status_code == 200


@pytest.mark.parametrize("page", ["", "abc", "0", "-1", "99", "1.5"])
def test_a_page_number_that_is_not_one_is_a_404(alice_client, page):
    response = alice_client.get("/api/tasks/", {"page": page})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


def test_the_browsable_api_form_submits_with_its_csrf_token(alice):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    assert browser.login(username="alice", password="pw-alice")
    page = browser.get("/api/tasks/", HTTP_ACCEPT="text/html")
    assert b'name="x"' in page.content
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        "/api/tasks/",
        {"x": '{"prompt": "from the form"}', "csrfmiddlewaretoken": token},
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 202
    assert TaskRecord.objects.get().input == {"prompt": "from the form"}
