"""Every log line the services and workers write is one record: control characters escaped,
tracebacks indented so nothing inside them starts a line."""

from __future__ import annotations

import io
import logging

import pytest
from training_sessions.http.request_logging import uvicorn_log_config
from training_sessions.log_lines import CONTINUATION, SafeLogFormatter, escape_control


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeLogFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tests.log_lines")
    logger.handlers = [handler]
    logger.propagate = False
    return logger, stream


def test_control_characters_in_a_message_are_escaped_on_its_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("key %s", "a\nINFO forged: line\r\x1b[2K\x00\u2028end")
    assert stream.getvalue().splitlines() == [
        "WARNING tests.log_lines: key a\\nINFO forged: line\\r\\x1b[2K\\x00\\u2028end"
    ]


def test_a_traceback_keeps_its_lines_each_indented(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError("boom\nINFO forged: line")
    except ValueError:
        logger.exception("crashed")
    first, *rest = stream.getvalue().splitlines()
    assert first == "ERROR tests.log_lines: crashed"
    assert rest[0] == f"{CONTINUATION}Traceback (most recent call last):"
    assert all(line.startswith(CONTINUATION) for line in rest)
    assert f"{CONTINUATION}INFO forged: line" in rest


def test_the_services_access_lines_are_escaped() -> None:
    spec = dict(uvicorn_log_config("info")["formatters"]["access"])
    formatter = spec.pop("()")(**spec)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/x\nINFO forged", "1.1", 200),
        None,
    )
    record.request_id = "-"
    line = formatter.format(record)
    assert "\n" not in line and '"GET /x\\nINFO forged HTTP/1.1" 200' in line


def test_text_without_control_characters_is_unchanged() -> None:
    assert escape_control("épée 5 € · ok") == "épée 5 € · ok"
