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
from training_engine.errors import (
    DataError,
    DeviceUnavailableError,
    EngineError,
    InvalidRequestError,
    QueueFullError,
    SessionConflictError,
    SessionNotFoundError,
    ShuttingDownError,
    StrategyConfigError,
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
    (SessionNotFoundError, 404),
    (SessionConflictError, 409),
    (InvalidParameterError, 422),
    (StrategyConfigError, 422),
    (DataError, 422),
    (DeviceUnavailableError, 422),
    (InvalidRequestError, 422),
    (QueueFullError, 429),
    (ShuttingDownError, 503),
)


def status_for(exc: Exception) -> int:
    """The HTTP status for a domain or service error (500 only for an unmapped bug)."""
    for kind, status in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


def error_response(status: int, detail: str, error: str) -> JSONResponse:
    """The one error body shape every route answers with."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail, "error": error}, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    problems = []
    for item in exc.errors():
        # Drop the "body" prefix: clients think in their own field names.
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        message = str(item.get("msg", "invalid value"))
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems) or "invalid request"


async def _handle_domain(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status == 500:
        logger.exception("unmapped error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error", "InternalError")
    return error_response(status, str(exc), type(exc).__name__)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, _describe_validation(exc), "ValidationError")


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), "HTTPError")


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""
    app.add_exception_handler(EngineError, _handle_domain)
    app.add_exception_handler(ServiceError, _handle_domain)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
