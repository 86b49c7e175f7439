"""What a running session reports to its supervisor, whatever runs it.

Every message carries the ``attempt`` it belongs to: 1 for the first launch of a
session, one more for every later launch (a resume, a recovery). A run that was given
up (a worker still exiting, a remote task on a node declared lost) may still send; its
supervisor ignores every message whose attempt is not the current one.

- :class:`Progress`: an engine progress event (batch events thinned, the rest all)
- :class:`Result`: the run finished or was cancelled
- :class:`Failure`: the run raised (the traceback goes to the log only)
- :class:`LogLine`: a log record of the run (INFO and above), for the event log
- :class:`Lost`: said by a runner, not the run: the run went down with its machine (a
  cluster node that died), so the session is resumed elsewhere, not failed

All are plain frozen dataclasses: they pickle through a pipe or a remote call alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from training_engine.job import TrainingResult
from training_engine.progress import ProgressEvent


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress event of the engine."""

    attempt: int
    event: ProgressEvent


@dataclass(frozen=True, slots=True)
class Result:
    """The run finished or was cancelled; ``cancel_reason`` says who cancelled it."""

    attempt: int
    result: TrainingResult
    cancel_reason: str | None


@dataclass(frozen=True, slots=True)
class Failure:
    """The run raised ``error_type: message``."""

    attempt: int
    error_type: str
    message: str


@dataclass(frozen=True, slots=True)
class LogLine:
    """A log record of the run: its level name, logger name and message."""

    attempt: int
    level: str
    logger: str
    message: str


@dataclass(frozen=True, slots=True)
class Lost:
    """The run was lost with the machine it ran on (``reason``): not its own failure."""

    attempt: int
    reason: str


WorkerMessage = Progress | Result | Failure | LogLine | Lost
