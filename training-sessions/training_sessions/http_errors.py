"""How the engine's errors read over HTTP, shared by the host service and the backend proxy.

Both services put their own errors in front of :data:`ENGINE_ERROR_STATUS` and answer
every error with the one body shape ``{"detail": "<message>", "error": "<type>"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from training_engine.errors import DataError, DeviceUnavailableError, StrategyConfigError

from training_sessions.errors import (
    InvalidRequestError,
    QueueFullError,
    SessionConflictError,
    SessionNotFoundError,
    ShuttingDownError,
)

StatusTable = Sequence[tuple[type[Exception], int]]

# A client's mistake is a 4xx; a busy or stopping runtime says so.
ENGINE_ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (SessionNotFoundError, 404),
    (SessionConflictError, 409),
    (StrategyConfigError, 422),
    (DataError, 422),
    (DeviceUnavailableError, 422),
    (InvalidRequestError, 422),
    (QueueFullError, 429),
    (ShuttingDownError, 503),
)


def status_for(exc: Exception, table: StatusTable) -> int:
    """The status of the first class in ``table`` that ``exc`` is (500 when none: a bug)."""
    for kind, status in table:
        if isinstance(exc, kind):
            return status
    return 500


def error_response(
    status: int,
    detail: str,
    error: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The one error body shape every route of both services answers with."""
    body = {"detail": detail, "error": error, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def describe_validation(exc: RequestValidationError) -> str:
    """One line naming each bad field as the client spelt it."""
    problems = []
    for item in exc.errors():
        # Drop the "body" prefix: clients think in their own field names.
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        message = str(item.get("msg", "invalid value"))
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems) or "invalid request"


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, describe_validation(exc), "ValidationError")


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), "HTTPError", headers=exc.headers)
