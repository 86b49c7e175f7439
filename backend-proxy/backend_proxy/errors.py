"""The proxy's errors and their statuses; ``training_sessions.http.errors`` answers them.

::

    ProxyError
    ├── HostUnavailableError     connection refused, timeout or 5xx from the host  -> 503
    │   └── BreakerOpenError     the breaker is open: the host was not even tried  -> 503
    ├── HostRejectedError        the host answered 4xx: passed through unchanged   -> same
    ├── StartUnconfirmedError    an ambiguous start the host could not confirm     -> 503
    └── TrainingNotFoundError    no training with this id in the routing table     -> 404

Session and engine errors (raised by local trainings) map by class in
``training_sessions.http.errors``. Every answer but a passed-through one has the
body ``{"detail": "<message>", "error": "<type>"}``, the host service's error shape;
a StartUnconfirmedError adds the ``training_id`` to retry with.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response
from training_sessions.http.errors import error_response
from training_sessions.http.errors import install_error_handlers as install_shared_handlers


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
)


def _pass_through(exc: Exception) -> Response:
    # The host's 4xx is the caller's problem: same status, same body.
    assert isinstance(exc, HostRejectedError)
    return Response(exc.body, status_code=exc.status_code, media_type=exc.content_type)


def _unconfirmed(exc: Exception) -> Response:
    assert isinstance(exc, StartUnconfirmedError)
    # What is known of it: nothing yet, and the host could not be asked (the poller retries).
    extra = {"training_id": exc.training_id, "status": "unknown", "host_reachable": False}
    return error_response(503, str(exc), type(exc).__name__, extra=extra)


def install_error_handlers(app: FastAPI, directories: Mapping[str, Path] | None = None) -> None:
    """Answer the proxy's errors on ``app`` (a backend mounting the router calls this too).

    ``directories`` (the settings' folders) never appear in an answer.
    """
    install_shared_handlers(
        app,
        STATUS_BY_ERROR,
        answers={HostRejectedError: _pass_through, StartUnconfirmedError: _unconfirmed},
        directories=directories,
    )
