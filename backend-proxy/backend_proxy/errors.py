"""The proxy's errors and their statuses; ``training_sessions.http.errors`` answers them.

::

    ProxyError
    ├── HostUnavailableError       connection refused, timeout or 5xx from the host  -> 503
    │   ├── BreakerOpenError       the breaker is open: the host was not even tried  -> 503
    │   └── HostDisabledError      USE_TRAINING_HOST_SERVICE=false: nothing is sent  -> 503
    ├── HostConnectionsBusyError   every connection to the host is in use here; says
    │                              nothing about the host (never a breaker failure)  -> 503
    ├── HostAnswerUnreadableError  a 2xx body that is not the host's contract        -> 502
    ├── HostRejectedError          the host answered 4xx: passed through unchanged   -> same
    │   ├── HostTrainingNotFoundError   404: the host has no training with this id
    │   ├── HostAtCapacityError         429: the host's queue is full
    │   └── HostStartTooLateError       409 StartDeadlinePassedError: nothing created
    ├── StartUnconfirmedError      an ambiguous start the host could not confirm     -> 503
    ├── TrainingNotFoundError      no training with this id in the routing table     -> 404
    └── TrainingNotOwnedError      a start naming a host training started elsewhere  -> 409

Session and engine errors (raised by local trainings) map by class in
``training_sessions.http.errors``. Every answer but a passed-through one has the
body ``{"detail": "<message>", "error": "<type>"}``, the host service's error shape;
a StartUnconfirmedError adds the ``training_id`` to retry with; a 503 of busy
connections and a 429 carry ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response
from training_sessions.contract import ErrorBody
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


class HostDisabledError(HostUnavailableError):
    """The host service is switched off here; a training routed to it earlier is asked nothing."""

    def __init__(self) -> None:
        super().__init__("the training host service is disabled")


class HostConnectionsBusyError(ProxyError):
    """No connection to the host came free in time; nothing was sent.

    The backend's own pool is full: the host's health is unknown, so the breaker
    does not count it as a failure.
    """

    retry_after_seconds = 1


class HostAnswerUnreadableError(ProxyError):
    """The host answered 2xx with a body its contract does not describe (versions differ?)."""


class HostRejectedError(ProxyError):
    """The host answered with a 4xx; the caller gets the same status and body.

    ``error`` is the host's error body, read once where the answer arrived (None when
    the body is not the host's error shape).
    """

    def __init__(
        self, status_code: int, body: bytes, content_type: str | None, error: ErrorBody | None
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.content_type = content_type
        self.error = error
        super().__init__(
            f"host service answered {status_code}: {error.detail if error else 'no detail'}"
        )


class HostTrainingNotFoundError(HostRejectedError):
    """The host has no training with this id (404)."""


class HostAtCapacityError(HostRejectedError):
    """Every worker of the host is busy and its queue is full (429)."""


class HostStartTooLateError(HostRejectedError):
    """The host read a start after its ``start_deadline`` and created nothing (409)."""


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


class TrainingNotOwnedError(ProxyError):
    """A start names a training the host has but that was not started through this backend."""

    def __init__(self, training_id: str) -> None:
        self.training_id = training_id
        super().__init__(
            f"training '{training_id}' exists on the training host but was not started "
            "through this backend; start with another training_id"
        )


# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (TrainingNotFoundError, 404),
    (TrainingNotOwnedError, 409),
    (HostUnavailableError, 503),
    (HostAnswerUnreadableError, 502),
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


def _connections_busy(exc: Exception) -> Response:
    assert isinstance(exc, HostConnectionsBusyError)
    headers = {"Retry-After": str(exc.retry_after_seconds)}
    return error_response(503, str(exc), type(exc).__name__, headers=headers)


def install_error_handlers(app: FastAPI, directories: Mapping[str, Path] | None = None) -> None:
    """Answer the proxy's errors on ``app`` (a backend mounting the router calls this too).

    ``directories`` (the settings' folders) never appear in an answer.
    """
    install_shared_handlers(
        app,
        STATUS_BY_ERROR,
        answers={
            HostRejectedError: _pass_through,
            StartUnconfirmedError: _unconfirmed,
            HostConnectionsBusyError: _connections_busy,
        },
        directories=directories,
    )
