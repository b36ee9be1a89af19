"""Logging: the key=value formatter (the plain-text twin of python-json-logger's JSON lines),
and the LOGGING dict settings.py hands to Django."""

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


_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_JSON_FORMATTER = "pythonjsonlogger.json.JsonFormatter"
_JSON_NAMES = {"levelname": "level", "name": "logger"}


def logging_config(*, json: bool, level: str, events_level: str) -> dict[str, Any]:
    """Django's LOGGING: one line per event of pqh (pqh.events, a handler of its own, so the
    format holds inside a Celery worker, which takes over the root logger), key=value or JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": _LOG_FORMAT},
            "json": {
                "()": _JSON_FORMATTER,
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": _JSON_NAMES,
                "timestamp": "time",
            },
            "events": {
                "()": "pqh_site.log_format.KeyValueFormatter",
                "fmt": "%(asctime)s event=%(message)s",
            },
            "events_json": {
                "()": _JSON_FORMATTER,
                "fmt": "%(message)s",
                "rename_fields": {"message": "event"},
                "timestamp": "time",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if json else "plain",
            },
            "events": {
                "class": "logging.StreamHandler",
                "formatter": "events_json" if json else "events",
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # axes logs every failed login at WARNING; pqh.events has one line for each already.
            "axes": {"level": "ERROR"},
            # Django warns of every 4xx ("Unauthorized: /api/usage/"); a refusal of pqh's has its one
            # pqh.events line already, and the client its JSON. Server errors (5xx) are still logged.
            "django.request": {"level": "ERROR"},
            "pqh.events": {
                "handlers": ["events"],
                "level": events_level,
                "propagate": False,
            },
        },
    }
