"""A key=value log formatter: the plain-text twin of python-json-logger's JSON lines."""

import json
import logging
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

_STANDARD = frozenset(RESERVED_ATTRS) | {"message", "asctime", "taskName"}


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """Format the record as usual, then append its `extra` fields as key=value pairs.

    Extra fields are the attributes that are not a standard LogRecord's, the same rule
    python-json-logger uses, so a line carries the same fields in either format.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [
            f"{name}={_render(value)}"
            for name, value in record.__dict__.items()
            if name not in _STANDARD and not name.startswith("_")
        ]
        return " ".join([line, *pairs]) if pairs else line
