"""The development log line: time, level, logger, message, then the fields a call passed."""

import logging

from core.log_format import ReadableFormatter


def _record(**extra) -> logging.LogRecord:
    record = logging.LogRecord("fairshare.request", logging.INFO, __file__, 1, "request", None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_request_line_shows_its_fields_after_the_message():
    line = ReadableFormatter().format(_record(method="GET", path="/c/demo/", status=200, duration_ms=3.1, actor=""))
    assert line.endswith("INFO    fairshare.request: request method=GET path=/c/demo/ status=200 duration_ms=3.1")
    assert "actor" not in line  # empty fields are left out


def test_a_plain_record_is_one_plain_line():
    line = ReadableFormatter().format(_record())
    assert line.endswith("INFO    fairshare.request: request") and "\n" not in line
