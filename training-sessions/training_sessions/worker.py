"""The training of one session attempt, and the local worker process that runs it.

:func:`train_session` is what any runner runs where the session is placed: it trains
through the engine and reports :mod:`~training_sessions.messages` (each stamped with
the attempt) through a ``send`` callable, so it knows nothing of pipes or clusters.
:mod:`~training_sessions.warm_worker` runs it in the local runner's processes, one
session after another.

Each session's log goes to ``WorkerSpec.log_path`` when one is given
(:func:`session_logging`, attached for that session only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from training_engine.cancellation import CancellationSignal
from training_engine.errors import EngineError
from training_engine.job import TrainingJob
from training_engine.progress import ProgressCallback, ProgressEvent

from training_sessions.log_lines import SafeLogFormatter
from training_sessions.messages import Failure, LogLine, Progress, Result, WorkerMessage

if TYPE_CHECKING:  # the service itself loads no data and no torch
    from training_engine.prepared_cache import PreparedDataCache

logger = logging.getLogger(__name__)

BATCH_EVENTS_PER_SECOND = 4.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Sends one message to the supervisor; False when it can no longer be reached.
Send = Callable[[WorkerMessage], bool]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything one attempt needs; pickled into the process that runs it.

    ``environment`` is set before CUDA starts, which reads it: the GPU the session
    trains on (``CUDA_VISIBLE_DEVICES``) and cuBLAS's deterministic workspace
    (``training_engine.gpu_placement``).
    """

    training_id: str
    attempt: int
    job: TrainingJob
    log_path: Path | None = None
    environment: dict[str, str] = field(default_factory=dict)


class WorkerCancel:
    """The cancel signal the engine polls: the supervisor's request or a local reason.

    The SIGTERM handler only sets a plain attribute: setting the multiprocessing
    event from a signal handler could deadlock on the lock ``is_set`` holds.
    """

    def __init__(self, requested: CancellationSignal) -> None:
        self._requested = requested
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def is_set(self) -> bool:
        return self.reason is not None or self._requested.is_set()

    def on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        self.cancel("shutdown")


class SupervisorLogHandler(logging.Handler):
    """Sends the run's log records to the supervisor, for the session's event log."""

    def __init__(self, spec: WorkerSpec, send: Send) -> None:
        super().__init__(level=logging.INFO)
        self._attempt = spec.attempt
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(LogLine(self._attempt, record.levelname, record.name, record.getMessage()))
        except Exception:
            self.handleError(record)


def _progress_sender(
    spec: WorkerSpec, send: Send, cancel: WorkerCancel, supervisor_alive: Callable[[], bool]
) -> ProgressCallback:
    def report(event: ProgressEvent) -> None:
        if not supervisor_alive() or not send(Progress(spec.attempt, event)):
            # The service is gone: checkpoint and stop; its next start resumes us.
            cancel.cancel("parent exited")

    return report


def configure_process_logging() -> None:
    """A worker process's own logging, once: INFO to stderr, warnings included."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    stderr = logging.StreamHandler()
    stderr.setFormatter(SafeLogFormatter(LOG_FORMAT))
    root.addHandler(stderr)
    # Warnings (warnings.warn) are part of the run's log too.
    logging.captureWarnings(True)


@contextmanager
def session_logging(spec: WorkerSpec, send: Send) -> Iterator[None]:
    """One session's log: to its file and to its supervisor, every line timestamped.

    Attached for the session only: a worker that runs one session after another
    writes each session's lines to that session's file and nowhere else.
    """
    root = logging.getLogger()
    handlers: list[logging.Handler] = [SupervisorLogHandler(spec, send)]
    if spec.log_path is not None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(spec.log_path, encoding="utf-8"))
    formatter = SafeLogFormatter(LOG_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


def train_session(
    spec: WorkerSpec,
    cancel: WorkerCancel,
    send: Send,
    supervisor_alive: Callable[[], bool] = lambda: True,
    data_cache: PreparedDataCache | None = None,
) -> WorkerMessage:
    """Train one attempt and report it: progress as it goes, then a result or a failure.

    Returns:
        The last message reported: the :class:`Result`, or the :class:`Failure`.
    """

    def report(message: WorkerMessage) -> WorkerMessage:
        if not send(message):
            logger.warning("supervisor unreachable; could not report %s", type(message).__name__)
        return message

    try:
        # Imported here: the service supervises without torch.
        from training_engine.trainer import train

        result = train(
            spec.job,
            cancel=cancel,
            on_progress=_progress_sender(spec, send, cancel, supervisor_alive),
            # The engine reads a batch's loss only for the events it sends.
            batch_event_interval=1.0 / BATCH_EVENTS_PER_SECOND,
            data_cache=data_cache,
        )
    except EngineError as exc:
        logger.warning("training %s failed: %s", spec.training_id, exc)
        return report(Failure(spec.attempt, type(exc).__name__, str(exc)))
    except Exception as exc:
        logger.exception("training %s crashed", spec.training_id)
        return report(Failure(spec.attempt, type(exc).__name__, str(exc)))
    reason = cancel.reason or ("stop" if cancel.is_set() else None)
    return report(Result(spec.attempt, result, reason))


class PipeSender:
    """The pipe to the supervisor; one message at a time (log records come from any thread)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, message: object) -> bool:
        """False when the supervisor is gone (a message, or the local runner's own words)."""
        try:
            with self._lock:
                self._conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            return False
        return True
