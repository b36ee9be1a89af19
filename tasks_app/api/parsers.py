"""Untrusted JSON in: parsed within bounds, and checked for text PostgreSQL's jsonb can store."""

import json
import math
import re
import sys
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from pqh_site.errors import PayloadTooLarge

# The characters JSON must escape (U+0000-U+001F) other than tab, newline and carriage return:
# jsonb refuses U+0000 outright, and the others have no place in a task's input. Lone
# surrogates (U+D800-U+DFFF) are not Unicode text: jsonb refuses them and UTF-8 cannot carry
# them.
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class JSONInputError(ValueError):
    """The input is not JSON that pqh accepts; the message says what and where."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"the number {text[:40]} is out of range of a double")
    return value


def _no_constants(name: str) -> Any:
    raise JSONInputError(f"{name} is not JSON; send a number or null")


def json_depth_exceeds(value: Any, *, max_depth: int) -> bool:
    """Return True if arrays and objects nest deeper than `max_depth` (a scalar is depth 0).

    Level by level, so no nesting can exhaust the stack; it stops at the first level too deep.
    """
    level, depth = [value], 0
    while level:
        children: list = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
            else:
                continue
            if depth + 1 > max_depth:
                return True
        level, depth = children, depth + 1
    return False


def json_parse(raw: bytes | str, *, max_depth: int) -> Any:
    """Parse a JSON text strictly; raise JSONInputError saying what is wrong.

    Strict means: UTF-8 only; no NaN or Infinity; no number that overflows a double; integers of
    at most sys.get_int_max_str_digits() digits; at most `max_depth` levels of arrays and
    objects.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(
                f"the body is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
            ) from None
    else:
        text = raw
    # Few enough brackets cannot nest too deep: skip the walk (the common case, at C speed).
    could_nest = text.count("[") + text.count("{") > max_depth
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_no_constants)
    except RecursionError:
        # The C decoder gives up near the interpreter's recursion limit (about 1000 levels).
        raise JSONInputError(f"JSON nests too deeply; the limit is {max_depth} levels") from None
    except (JSONInputError, json.JSONDecodeError) as exc:
        prefix = "" if isinstance(exc, JSONInputError) else "malformed JSON: "
        raise JSONInputError(f"{prefix}{exc}") from None
    except ValueError:
        # The decoder's one other ValueError: int() refusing an integer longer than Python's
        # int/str limit (4300 digits by default; jsonb would store far more).
        limit = sys.get_int_max_str_digits()
        raise JSONInputError(f"an integer is too long; the limit is {limit} digits") from None
    if could_nest and json_depth_exceeds(value, max_depth=max_depth):
        raise JSONInputError(f"JSON nests too deeply; the limit is {max_depth} levels")
    return value


def _describe(text: str) -> str | None:
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"contains U+{code:04X} at offset {found.start()}, a lone surrogate, which is not Unicode text"
    return (
        f"contains the control character U+{code:04X} at offset {found.start()}; "
        "only tab, newline and carriage return are accepted"
    )


def _has_bad_text(value: Any) -> bool:
    """Return True if any string or key holds a character _BAD_TEXT matches (no paths: fast)."""
    level = [value]
    while level:
        texts = [item for item in level if isinstance(item, str)]
        children: list = []
        for item in level:
            if isinstance(item, dict):
                texts.extend(item)
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        # Newline is allowed text, so joining cannot make a match that was not there.
        if texts and _BAD_TEXT.search("\n".join(texts)):
            return True
        level = children
    return False


def json_text_problem(value: Any, *, path: str) -> str | None:
    """Return what is wrong with the first string or key PostgreSQL's jsonb cannot store, or None.

    The answer names where, as `x["key"][2]`. Iterative, like json_depth_exceeds; the paths
    are worked out only once a fast pass has found a problem.
    """
    if not _has_bad_text(value):
        return None
    stack: list[tuple[Any, str, str | None]] = [(value, path, None)]
    while stack:
        item, where, key = stack.pop()
        if key is not None and (problem := _describe(key)):
            return f"{where}: the key {problem}"
        if isinstance(item, str):
            if problem := _describe(item):
                return f"{where}: {problem}"
        elif isinstance(item, dict):
            # Pushed in reverse, so the first problem in document order is the one reported.
            stack.extend(
                (child, f"{where}[{json.dumps(name)}]", name)
                for name, child in reversed(item.items())
            )
        elif isinstance(item, list):
            stack.extend((item[i], f"{where}[{i}]", None) for i in range(len(item) - 1, -1, -1))
    return None  # pragma: no cover - the fast pass found a problem, so this one does too


class StrictJSONParser(JSONParser):
    """DRF's JSON parser within bounds: a body too big is a 413, anything json_parse refuses a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        """Parse the body; the bounded read is a backstop for the size check of the middleware."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes")
        try:
            return json_parse(raw, max_depth=settings.PQH_MAX_JSON_DEPTH)
        except JSONInputError as exc:
            raise ParseError(str(exc)) from None
