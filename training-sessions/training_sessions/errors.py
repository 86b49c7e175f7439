"""Errors of the session runtime, apart from the engine's own (``training_engine.errors``).

::

    SessionError                 the session runtime refused a request
    ├── SessionNotFoundError     no session with that id
    ├── SessionConflictError     same id with another request; delete while running
    │   ├── InvalidTransitionError   a status move the transition table forbids
    │   ├── NotResumableError        resume of an active or completed session
    │   │   └── NoCheckpointError        resume of a session that never checkpointed
    │   └── StartDeadlinePassedError a start read after the caller's start_deadline
    ├── QueueFullError           workers busy and the queue full
    ├── TooManyStreamsError      the service or the client holds its most event streams
    ├── ShuttingDownError        the runtime is stopping
    ├── LaunchError              a runner could not start a session's run
    ├── CorruptCheckpointError   resume from a checkpoint that cannot be read
    └── InvalidRequestError      unknown strategy, unsafe name, bad dates, ...

A request can also fail with an engine error (``StrategyConfigError``,
``DataError``, ``DeviceUnavailableError``) raised while it is resolved.
"""

from __future__ import annotations


class SessionError(Exception):
    """Base for errors of the session runtime."""


class SessionNotFoundError(SessionError):
    """No training session with this id."""

    def __init__(self, training_id: str) -> None:
        self.training_id = training_id
        super().__init__(f"no training with id '{training_id}'")


class SessionConflictError(SessionError):
    """The request conflicts with a session's state (same id with another request, ...)."""


class QueueFullError(SessionError):
    """Every worker is busy and the waiting queue is at its limit."""


class TooManyStreamsError(SessionError):
    """The service, or this client, already holds as many event streams as allowed."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ShuttingDownError(SessionError):
    """The runtime is stopping and accepts no new sessions."""


class LaunchError(SessionError):
    """A runner could not start a run (no process, no cluster); the session fails with it."""


class RunnerUnavailableError(LaunchError):
    """The runner cannot start anything now (its cluster does not answer): the session waits
    in the queue and the launch is tried again, rather than failing."""


class InvalidRequestError(SessionError):
    """A training request names something unusable (unknown strategy, unsafe name, ...)."""


class InvalidTransitionError(SessionConflictError):
    """A status change out of a terminal status, or one the transition table does not allow."""


class NotResumableError(SessionConflictError):
    """Resume asked of a queued, running or completed session (or one with no checkpoint)."""


class NoCheckpointError(NotResumableError):
    """Resume asked of a session that stopped before writing its first checkpoint."""


class CorruptCheckpointError(SessionError):
    """The session's checkpoint cannot be read (truncated, overwritten, another format).

    ``reason`` says why, naming the file by its name only (never the folder it lies in).
    """

    def __init__(self, training_id: str, reason: str) -> None:
        self.training_id = training_id
        self.reason = reason
        super().__init__(f"training '{training_id}' cannot be resumed: {reason}")


class NothingToStopError(SessionConflictError):
    """A stop asked of a session that is already completed, failed or cancelled."""


class StartDeadlinePassedError(SessionConflictError):
    """A start arrived after its ``start_deadline``: the caller has given up waiting for it,
    so it is not created (the caller may run it elsewhere)."""


class ModelNotFoundError(SessionError):
    """No model with this id in the models folder."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        super().__init__(f"no model with id '{model_id}'")


class ModelInUseError(SessionConflictError):
    """A model still named by a training that exists; deleting it needs ``force``."""

    def __init__(self, model_id: str, training_ids: list[str]) -> None:
        self.model_id = model_id
        self.training_ids = training_ids
        names = ", ".join(training_ids)
        super().__init__(
            f"model '{model_id}' is the model of training(s) {names}: delete training "
            f"{training_ids[0]} first, or pass ?force=true"
        )
