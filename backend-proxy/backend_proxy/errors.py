"""The proxy's errors and the ONE place every error becomes an HTTP answer.

::

    ProxyError
    ├── HostUnavailableError     connection refused, timeout or 5xx from the host  -> 503
    │   └── BreakerOpenError     the breaker is open: the host was not even tried  -> 503
    ├── HostRejectedError        the host answered 4xx: passed through unchanged   -> same
    ├── StartUnconfirmedError    an ambiguous start the host could not confirm     -> 503
    └── TrainingNotFoundError    no training with this id in the routing table     -> 404

Engine errors (``training_engine.errors``, raised by local trainings) map by class
in ``STATUS_BY_ERROR``. Every answer but a passed-through one has the body
``{"detail": "<message>", "error": "<type>"}``, the host service's error shape.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from training_engine.errors import EngineError
from training_sessions.errors import SessionError
from training_sessions.http_errors import (
    ENGINE_ERROR_STATUS,
    error_response,
    handle_http_exception,
    handle_validation_error,
    status_for,
)

logger = logging.getLogger(__name__)


class ProxyError(Exception):
    """Base for errors the proxy raises itself."""


class HostUnavailableError(ProxyError):
    """The host could not be reached, timed out, or failed (5xx)."""

    def __init__(self, message: str, *, sent: bool = False) -> None:
        # sent: the request may have reached the host, so its effect is unknown.
        self.sent = sent
        super().__init__(message)


class BreakerOpenError(HostUnavailableError):
    """The breaker is open (or another call is probing): the host was not called."""


class HostRejectedError(ProxyError):
    """The host answered with a 4xx; the caller gets the same status and body."""

    def __init__(self, status_code: int, body: bytes, content_type: str | None) -> None:
        self.status_code = status_code
        self.body = body
        self.content_type = content_type
        super().__init__(f"host service answered {status_code}")


class StartUnconfirmedError(ProxyError):
    """A start reached the host ambiguously and the host could not be asked about it."""

    def __init__(self, training_id: str) -> None:
        self.training_id = training_id
        super().__init__(
            f"the training host may have started training '{training_id}' but cannot be "
            "reached to confirm; retry with the same training_id"
        )


class TrainingNotFoundError(ProxyError):
    """No training with this id was routed by this backend."""

    def __init__(self, training_id: str) -> None:
        self.training_id = training_id
        super().__init__(f"no training with id '{training_id}'")


# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (TrainingNotFoundError, 404),
    (HostUnavailableError, 503),
    (StartUnconfirmedError, 503),
    *ENGINE_ERROR_STATUS,
)


async def _handle_domain(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HostRejectedError):
        # The host's 4xx is the caller's problem: same status, same body.
        return Response(exc.body, status_code=exc.status_code, media_type=exc.content_type)
    status = status_for(exc, STATUS_BY_ERROR)
    if status == 500:
        logger.exception("unmapped error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error", "InternalError")
    extra = {"training_id": exc.training_id} if isinstance(exc, StartUnconfirmedError) else {}
    return error_response(status, str(exc), type(exc).__name__, extra=extra)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app`` (a backend mounting the router calls this too)."""
    app.add_exception_handler(ProxyError, _handle_domain)
    app.add_exception_handler(EngineError, _handle_domain)
    app.add_exception_handler(SessionError, _handle_domain)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
