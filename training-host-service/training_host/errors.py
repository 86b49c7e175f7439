"""The service's own errors and the ONE place every error becomes an HTTP answer.

::

    ServiceError
    ├── AuthenticationError   missing or wrong bearer token      -> 401
    └── InvalidParameterError a value the engine never sees is bad -> 422
        └── UnsafePathError   a path outside the allowed folder

Engine errors (``training_engine.errors``) map by class in ``STATUS_BY_ERROR``.
An oversized body is answered 413 by ``body_limit`` before any route runs.
Every answer has the body ``{"detail": "<message>", "error": "<type>"}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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


class ServiceError(Exception):
    """Base for errors the HTTP layer raises itself."""


class AuthenticationError(ServiceError):
    """The request lacks a valid ``Authorization: Bearer <token>`` header."""


class InvalidParameterError(ServiceError):
    """A query parameter or legacy field the HTTP layer checks itself has a bad value."""


class UnsafePathError(InvalidParameterError):
    """A client-supplied path points outside the directory it must stay in."""


# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (AuthenticationError, 401),
    (InvalidParameterError, 422),
    *ENGINE_ERROR_STATUS,
)


async def _handle_domain(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc, STATUS_BY_ERROR)
    if status == 500:
        logger.exception("unmapped error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error", "InternalError")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, str(exc), type(exc).__name__, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""
    app.add_exception_handler(EngineError, _handle_domain)
    app.add_exception_handler(SessionError, _handle_domain)
    app.add_exception_handler(ServiceError, _handle_domain)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
