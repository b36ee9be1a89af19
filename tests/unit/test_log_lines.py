"""Log lines: one per event, the same fields in key=value and JSON, and no unknown refusal reason."""

import json
import logging

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from pqh_site.log_format import KeyValueFormatter
from tasks_app.ops import events


def test_an_unknown_refusal_reason_is_a_bug():
    with pytest.raises(ValueError, match="unknown refusal reason"):
        events.event_refused(user=None, reason="because")


def test_json_lines_carry_the_same_fields_as_plain_ones():
    config = settings.LOGGING["formatters"]
    as_json = JsonFormatter(**{k: v for k, v in config["events_json"].items() if k != "()"})
    plain = KeyValueFormatter(**{k: v for k, v in config["events"].items() if k != "()"})
    record = logging.LogRecord("pqh.events", logging.INFO, __file__, 1, "refused", None, None)
    record.__dict__.update(user="alice", reason="invalid", detail='x is "big" = bad')
    parsed = json.loads(as_json.format(record))
    assert parsed["event"] == "refused"
    assert parsed["detail"] == 'x is "big" = bad' and "time" in parsed
    line = plain.format(record)
    assert line.endswith('event=refused user=alice reason=invalid detail="x is \\"big\\" = bad"')


def test_settings_pick_json_when_asked():
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.LOGGING['handlers']['events']['formatter'])"
    )
    env = subprocess_env(PQH_LOG_JSON="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.strip() == "events_json", out.stderr
