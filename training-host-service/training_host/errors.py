"""The service's own errors and their statuses; ``training_sessions.http.errors`` answers them.

::

    ServiceError
    ├── AuthenticationError   missing or wrong bearer token      -> 401
    └── InvalidParameterError a value the engine never sees is bad -> 422
        └── UnsafePathError   a path outside the allowed folder

Session and engine errors map by class in ``training_sessions.http.errors``.
An oversized body is answered 413 by ``body_limit`` before any route runs.
Every answer has the body ``{"detail": "<message>", "error": "<type>"}``.
"""

from __future__ import annotations

from fastapi import FastAPI
from training_sessions.http.errors import install_error_handlers as install_shared_handlers


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
)


def install_error_handlers(app: FastAPI) -> None:
    """Answer this service's errors, the runtime's and the engine's on ``app``."""
    install_shared_handlers(app, STATUS_BY_ERROR, headers={401: {"WWW-Authenticate": "Bearer"}})
