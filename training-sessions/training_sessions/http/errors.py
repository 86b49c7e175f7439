"""The ONE place errors become HTTP answers, for the host service and the backend proxy.

Every error of both services is answered with the body :class:`ErrorBody`,
``{"detail": "<message>", "error": "<type>"}``. A service calls
:func:`install_error_handlers` with the statuses of its own errors; the session
runtime's (``training_sessions.errors``) and the engine's
(``training_engine.errors``) are in :data:`RUNTIME_ERROR_STATUS` and always
apply. :func:`error_responses` documents the same bodies in OpenAPI. This is the
only module of ``training_sessions`` that imports FastAPI or Starlette.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from training_engine.errors import (
    DataError,
    DeviceUnavailableError,
    EngineError,
    StrategyConfigError,
    UnsafePathError,
)

from training_sessions.contract import ErrorBody
from training_sessions.errors import (
    CorruptCheckpointError,
    InvalidRequestError,
    ModelNotFoundError,
    QueueFullError,
    SessionConflictError,
    SessionError,
    SessionNotFoundError,
    ShuttingDownError,
    TooManyStreamsError,
)
from training_sessions.http.auth import AuthenticationError

logger = logging.getLogger(__name__)

StatusTable = Sequence[tuple[type[Exception], int]]
# An answer of its own for one error class (the proxy passes the host's 4xx through).
ErrorAnswer = Callable[[Exception], Response]

# A client's mistake is a 4xx; a busy or stopping runtime says so.
RUNTIME_ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (AuthenticationError, 401),
    (SessionNotFoundError, 404),
    (ModelNotFoundError, 404),
    (SessionConflictError, 409),
    (InvalidRequestError, 422),
    (CorruptCheckpointError, 422),
    (StrategyConfigError, 422),
    (DataError, 422),
    (DeviceUnavailableError, 422),
    (UnsafePathError, 422),
    (QueueFullError, 429),
    (TooManyStreamsError, 429),
    (ShuttingDownError, 503),
)
# The database is down or unreachable: the client may retry (503), never a plain 500.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
)

_WHEN: dict[int, str] = {
    400: "The request cannot be read",
    401: "Missing or wrong bearer token",
    404: "No training with this id",
    409: "The request conflicts with the training's state",
    413: "The request body is larger than the limit",
    422: "A field, parameter or referenced file is invalid; the detail names it",
    429: "Every worker is busy and the queue is full, or too many event streams are open",
    503: "The service is stopping or cannot reach what it needs",
}


def error_responses(
    *statuses: int, model: type[BaseModel] = ErrorBody
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented with the body really sent."""
    return {
        status: {"model": model, "description": _WHEN.get(status, HTTPStatus(status).phrase)}
        for status in statuses
    }


def json_error_responses(
    *statuses: int, model: type[BaseModel] = ErrorBody
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers text (a stream, a log): its errors are JSON.

    FastAPI documents a ``model`` under the route's own media type; these entries name
    ``application/json`` themselves (the model must also be used by a JSON route).
    """
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        status: {
            "description": _WHEN.get(status, HTTPStatus(status).phrase),
            "content": {"application/json": {"schema": schema}},
        }
        for status in statuses
    }


def error_response(
    status: int,
    detail: str,
    error: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The one error body shape every route of both services answers with."""
    body = {**ErrorBody(detail=detail, error=error).model_dump(), **(extra or {})}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def status_for(exc: Exception, table: StatusTable) -> int:
    """The status of the first class in ``table`` that ``exc`` is (500 when none: a bug)."""
    for kind, status in table:
        if isinstance(exc, kind):
            return status
    return 500


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


def hide_directories(message: str, directories: Mapping[str, Path]) -> str:
    """``message`` with each directory written as its setting's name (``<data_dir>``).

    Clients learn which file was missing, never where the service keeps its files.
    """
    spellings: list[tuple[str, str]] = []
    for name, directory in directories.items():
        for spelling in {str(directory), str(Path(directory).expanduser().resolve())}:
            if spelling not in {"", ".", "/"}:
                spellings.append((spelling, f"<{name}>"))
    # Longest first: a folder inside another is replaced by its own name.
    for spelling, placeholder in sorted(spellings, key=lambda item: -len(item[0])):
        message = message.replace(spelling, placeholder)
    return message


def install_error_handlers(
    app: FastAPI,
    statuses: StatusTable = (),
    *,
    headers: Mapping[int, Mapping[str, str]] | None = None,
    answers: Mapping[type[Exception], ErrorAnswer] | None = None,
    directories: Mapping[str, Path] | None = None,
) -> None:
    """Answer every known error of ``app`` with :class:`ErrorBody`.

    Args:
        statuses: the service's own error classes and their statuses, most specific
            first; :data:`RUNTIME_ERROR_STATUS` follows them.
        headers: extra response headers by status (``401: WWW-Authenticate``).
        answers: error classes that make their own answer.
        directories: the service's folders by setting name, hidden from every message.
    """
    table = (*statuses, *RUNTIME_ERROR_STATUS)
    extra_headers = {401: {"WWW-Authenticate": "Bearer"}, **(headers or {})}
    hidden = dict(directories or {})

    async def handle_error(request: Request, exc: Exception) -> Response:
        if _database_unavailable(exc):
            logger.warning(
                "database unavailable on %s %s: %s", request.method, request.url.path, exc
            )
            return error_response(503, "database unavailable", type(exc).__name__)
        status = status_for(exc, table)
        if status == 500:
            logger.exception("unmapped error on %s %s", request.method, request.url.path)
            return error_response(500, "internal error", "InternalError")
        return error_response(
            status,
            hide_directories(str(exc), hidden),
            type(exc).__name__,
            headers={**extra_headers.get(status, {}), **_retry_after(exc)},
        )

    handled: set[type[Exception]] = {
        EngineError,
        SessionError,
        DBAPIError,
        *DATABASE_UNAVAILABLE_ERRORS,
        *(kind for kind, _ in table),
    }
    for kind in handled:
        app.add_exception_handler(kind, handle_error)
    for kind, answer in (answers or {}).items():
        app.add_exception_handler(kind, _answering_with(answer))
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)


def _retry_after(exc: Exception) -> dict[str, str]:
    if isinstance(exc, TooManyStreamsError):
        return {"Retry-After": str(exc.retry_after_seconds)}
    return {}


def _database_unavailable(exc: Exception) -> bool:
    # A DBAPIError on a connection found dead is an outage too, whatever its class.
    return isinstance(exc, DATABASE_UNAVAILABLE_ERRORS) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def _answering_with(answer: ErrorAnswer) -> Callable[[Request, Exception], Any]:
    async def handle(request: Request, exc: Exception) -> Response:
        return answer(exc)

    return handle


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = describe_body_problem(exc, request.headers.get("content-type"))
    return error_response(422, detail or describe_validation(exc), "ValidationError")


SEND_AS_JSON = "send the body as JSON with -H 'content-type: application/json'"
# What a body that is no JSON object at all is told to look like.
BODY_EXAMPLE = '{"symbol": "AAPL", "timeframe": "1h"}'
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type"}


def describe_body_problem(exc: RequestValidationError, content_type: str | None) -> str | None:
    """What a newcomer's curl got wrong about the body as a whole, and how to fix it.

    None when the body was a JSON object and only its fields are wrong (then
    :func:`describe_validation` names them).
    """
    whole_body = [item for item in exc.errors() if tuple(item.get("loc", ())[:1]) == ("body",)]
    if not whole_body:
        return None
    first = whole_body[0]
    kind, location = first.get("type"), tuple(first.get("loc", ()))
    is_json = _is_json(content_type)
    if kind == "json_invalid":
        where = _position_in_words(exc.body, location[1] if len(location) > 1 else None)
        problem = str((first.get("ctx") or {}).get("error", "invalid JSON"))
        return (
            f"the body is not valid JSON: {problem}{where}; send a JSON object like {BODY_EXAMPLE}"
        )
    if location != ("body",):
        return None
    if not is_json:
        said = f"'{content_type}'" if content_type else "none"
        return f"{SEND_AS_JSON} (this request's content-type: {said})"
    if kind == "missing":
        return f"the body is empty; send a JSON object like {BODY_EXAMPLE}"
    if kind in _NOT_AN_OBJECT:
        return f"the body must be a JSON object like {BODY_EXAMPLE}"
    return None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _position_in_words(document: Any, position: Any) -> str:
    """`` at line 2, column 14`` of ``position`` in ``document`` ('' when unknown)."""
    if not isinstance(position, int) or not isinstance(document, str | bytes):
        return ""
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else document
    before = text[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    return f" at line {line}, column {column}"


# FastAPI's answer to a body it cannot decode (not UTF-8): a 400 no route documents.
_UNREADABLE_BODY = "There was an error parsing the body"


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        # Like invalid JSON, an undecodable body is a 422 (documented on every body route).
        return error_response(422, "body: not valid JSON (it must be UTF-8)", "ValidationError")
    return error_response(exc.status_code, str(exc.detail), "HTTPError", headers=exc.headers)
