"""Timestamped logs and a request id, for both services.

:func:`uvicorn_log_config` is the ``log_config`` both CLIs give uvicorn: every
line (uvicorn's own, its access log and the services' loggers) starts with a
timestamp, and access lines end with the request's id. :class:`RequestIdMiddleware`
takes a sane incoming ``X-Request-ID`` or makes one, echoes it in the answer and
keeps it in a context variable that :class:`RequestIdFilter` puts on log records.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.logging import AccessFormatter

from training_sessions.log_lines import EscapingFormatterMixin, SafeLogFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# Ids a client may choose: short, printable, nothing that could forge a log line.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")

TIMESTAMP_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_FORMAT = (
    '%(asctime)s %(levelname)s access: %(client_addr)s "%(request_line)s" %(status_code)s '
    "request_id=%(request_id)s"
)


def current_request_id() -> str:
    """The id of the request being handled ('-' outside one)."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (the access log's format uses it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    """Pure ASGI: a request id per request, echoed in ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header_value(scope, b"x-request-id")
        request_id = incoming if incoming and _SANE_REQUEST_ID.match(incoming) else None
        request_id = request_id or uuid.uuid4().hex
        token = _request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)


def header_value(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class SafeAccessFormatter(EscapingFormatterMixin, AccessFormatter):
    """uvicorn's access lines, control characters escaped like every other line."""


def uvicorn_log_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn: timestamps everywhere, request ids,
    control characters escaped (``training_sessions.log_lines``)."""
    level_name = "DEBUG" if level.lower() == "trace" else level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "default": {"()": SafeLogFormatter, "fmt": TIMESTAMP_FORMAT},
            # No colours: their escape codes would be written out as text.
            "access": {"()": SafeAccessFormatter, "fmt": ACCESS_FORMAT, "use_colors": False},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "filters": ["request_id"],
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level_name, "propagate": False},
            "uvicorn.error": {"level": level_name},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        # The services' own loggers (training_sessions, training_host, backend_proxy, ...).
        "root": {"handlers": ["default"], "level": level_name},
    }
