"""The pure parts of reading untrusted JSON: depth, text jsonb can store, strict parsing."""

import pytest

from tasks_app.api.parsers import JSONInputError, json_depth_exceeds, json_parse, json_text_problem


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("s", 0),
        ([], 1),
        ({}, 1),
        ({"x": []}, 2),
        ({"x": [1, {"y": [[]]}]}, 5),
        ([[], [[[]]], []], 4),
    ],
)
def test_depth_counts_arrays_and_objects_the_outer_one_included(value, depth):
    assert not json_depth_exceeds(value, max_depth=depth)
    assert json_depth_exceeds(value, max_depth=depth - 1) == (depth > 0)


def test_depth_of_a_very_deep_value_needs_no_recursion():
    value: list = []
    for _ in range(200_000):
        value = [value]
    assert json_depth_exceeds(value, max_depth=32)
    assert not json_depth_exceeds(value, max_depth=200_001)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("fine\ttext\r\n", None),
        ("é 😀 \x7f \u2028", None),
        ("a\x00b", "x: contains the control character U+0000 at offset 1"),
        (["ok", {"k": "\x1b[31m"}], 'x[1]["k"]: contains the control character U+001B'),
        ({"a\x00": 1}, 'x["a\\u0000"]: the key contains the control character U+0000'),
        ({"a": "\x01", "b": "\x02"}, 'x["a"]: contains the control character U+0001'),
        ([["\x03"], "\x04"], "x[0][0]: contains the control character U+0003"),
        ("\ud83d", "x: contains U+D83D at offset 0, a lone surrogate"),
    ],
)
def test_text_problems_are_named_where_they_first_occur(value, problem):
    found = json_text_problem(value, path="x")
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": \xff}', "the body is not valid UTF-8: byte 0xff at offset 6"),
        ("[1,", "malformed JSON: Expecting value: line 1 column 4 (char 3)"),
        ("NaN", "NaN is not JSON; send a number or null"),
        ("[-Infinity]", "-Infinity is not JSON; send a number or null"),
        ("1E309", "the number 1E309 is out of range of a double"),
        ("9" * 4301, "an integer is too long; the limit is 4300 digits"),
        ("[" * 33 + "]" * 33, "JSON nests too deeply; the limit is 32 levels"),
        ("[" * 50_000 + "]" * 50_000, "JSON nests too deeply; the limit is 32 levels"),
    ],
)
def test_strict_parsing_says_what_is_wrong(raw, message):
    with pytest.raises(JSONInputError) as refused:
        json_parse(raw, max_depth=32)
    assert str(refused.value) == message


def test_strict_parsing_keeps_what_is_json():
    text = '{"a": [1, -0.5, 1e308, "\\u00e9\\ud83d\\ude00", null, true], "b": ' + "9" * 4300 + "}"
    assert json_parse(text.encode(), max_depth=2) == {
        "a": [1, -0.5, 1e308, "é😀", None, True],
        "b": int("9" * 4300),
    }
