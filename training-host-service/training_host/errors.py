"""The service's own errors and their statuses; ``training_sessions.http.errors`` answers them.

::

    ServiceError
    ├── InvalidParameterError a value the engine never sees is bad -> 422
    │   └── UnsafePathError   a path outside the allowed folder
    └── ExecutorUnavailableError the configured executor cannot run here (at start)

A missing or wrong bearer token is ``training_sessions.http.auth.AuthenticationError``
(401); it, session and engine errors map by class in ``training_sessions.http.errors``.
An oversized body is answered 413 by ``body_limit`` before any route runs.
Every answer has the body ``{"detail": "<message>", "error": "<type>"}``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from training_sessions.http.auth import AuthenticationError
from training_sessions.http.errors import install_error_handlers as install_shared_handlers


class ServiceError(Exception):
    """Base for errors the HTTP layer raises itself."""


class InvalidParameterError(ServiceError):
    """A query parameter or legacy field the HTTP layer checks itself has a bad value."""


class UnsafePathError(InvalidParameterError):
    """A client-supplied path points outside the directory it must stay in."""


class ExecutorUnavailableError(ServiceError):
    """The configured executor cannot be used (``ray`` without Ray installed)."""


# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = ((InvalidParameterError, 422),)

__all__ = [
    "AuthenticationError",
    "ExecutorUnavailableError",
    "InvalidParameterError",
    "ServiceError",
    "UnsafePathError",
]


def install_error_handlers(app: FastAPI, directories: dict[str, Path] | None = None) -> None:
    """Answer this service's errors, the runtime's and the engine's on ``app``.

    ``directories`` (the settings' folders) never appear in an answer.
    """
    install_shared_handlers(app, STATUS_BY_ERROR, directories=directories)
