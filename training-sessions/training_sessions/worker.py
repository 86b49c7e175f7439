"""The worker process of one session: trains through the engine, reports to the parent.

Runs in a fresh interpreter (multiprocessing "spawn"), so a crash, an
out-of-memory kill or leaked GPU memory ends with the process and never with
the service. Messages to the parent (:data:`WorkerMessage`), over a one-way pipe:

- :class:`Progress`: batch events at most BATCH_EVENTS_PER_SECOND, the rest all
- :class:`Result`: the run finished or was cancelled
- :class:`Failure`: the run raised (the traceback goes to the log only)
- :class:`LogLine`: a log record of the run (INFO and above), for the event log

The worker also writes its whole log to ``WorkerSpec.log_path`` when one is given.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType

from training_engine.cancellation import CancellationSignal
from training_engine.errors import EngineError
from training_engine.job import TrainingJob, TrainingResult
from training_engine.progress import ProgressCallback, ProgressEvent

from training_sessions.log_lines import SafeLogFormatter

logger = logging.getLogger(__name__)

BATCH_EVENTS_PER_SECOND = 4.0


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress event of the engine."""

    event: ProgressEvent


@dataclass(frozen=True, slots=True)
class Result:
    """The run finished or was cancelled; ``cancel_reason`` says who cancelled it."""

    result: TrainingResult
    cancel_reason: str | None


@dataclass(frozen=True, slots=True)
class Failure:
    """The run raised ``error_type: message``."""

    error_type: str
    message: str


@dataclass(frozen=True, slots=True)
class LogLine:
    """A log record of the worker: its level name, logger name and message."""

    level: str
    logger: str
    message: str


WorkerMessage = Progress | Result | Failure | LogLine
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs; pickled into the spawned process.

    ``environment`` is set before CUDA starts, which reads it: the GPU the session
    trains on (``CUDA_VISIBLE_DEVICES``) and cuBLAS's deterministic workspace
    (``training_engine.gpu_placement``).
    """

    training_id: str
    job: TrainingJob
    log_path: Path | None = None
    environment: dict[str, str] = field(default_factory=dict)


class WorkerCancel:
    """The cancel signal the engine polls: the parent's event or a local flag.

    The SIGTERM handler only sets a plain attribute: setting the multiprocessing
    event from a signal handler could deadlock on the lock ``is_set`` holds.
    """

    def __init__(self, parent_event: CancellationSignal) -> None:
        self._parent_event = parent_event
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def is_set(self) -> bool:
        return self.reason is not None or self._parent_event.is_set()

    def on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        self.cancel("shutdown")


class ParentPipe:
    """The pipe to the parent; one message at a time (log records may come from any thread)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: WorkerMessage) -> bool:
        """False when the parent is gone."""
        try:
            with self._lock:
                self._conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            return False
        return True


class PipeLogHandler(logging.Handler):
    """Sends the run's log records to the parent, for the session's event log."""

    def __init__(self, pipe: ParentPipe) -> None:
        super().__init__(level=logging.INFO)
        self._pipe = pipe

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pipe.send(LogLine(record.levelname, record.name, record.getMessage()))
        except Exception:
            self.handleError(record)


def _progress_sender(pipe: ParentPipe, cancel: WorkerCancel, parent_pid: int) -> ProgressCallback:
    def send(event: ProgressEvent) -> None:
        if os.getppid() != parent_pid:
            # The service died: checkpoint and stop; its next start resumes us.
            cancel.cancel("parent exited")
            return
        if not pipe.send(Progress(event)):
            cancel.cancel("parent exited")

    return send


def _send(pipe: ParentPipe, message: WorkerMessage) -> None:
    if not pipe.send(message):
        logger.warning("parent is gone; could not report %s", type(message).__name__)


def _configure_logging(spec: WorkerSpec, pipe: ParentPipe) -> None:
    """Log to stderr, to the session's log file and to the parent, every line timestamped."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(), PipeLogHandler(pipe)]
    if spec.log_path is not None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(spec.log_path, encoding="utf-8"))
    formatter = SafeLogFormatter(LOG_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # Warnings (warnings.warn) are part of the run's log too.
    logging.captureWarnings(True)


def run_worker(
    spec: WorkerSpec, cancel_event: CancellationSignal, conn: Connection, parent_pid: int
) -> None:
    """Entry point of the worker process."""
    # Before anything initialises CUDA: both variables are read once, when it starts.
    os.environ.update(spec.environment)
    # Ctrl-C in a terminal reaches the whole process group: the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cancel = WorkerCancel(cancel_event)
    # systemd/launchd may signal the whole group: checkpoint and stop, to be resumed.
    signal.signal(signal.SIGTERM, cancel.on_sigterm)
    pipe = ParentPipe(conn)
    _configure_logging(spec, pipe)
    logger.info(
        "training %s: worker started (pid %d%s)",
        spec.training_id,
        os.getpid(),
        "".join(f", {name}={value}" for name, value in sorted(spec.environment.items())),
    )
    try:
        # Imported here: the parent supervises without torch.
        from training_engine.trainer import train

        result = train(
            spec.job,
            cancel=cancel,
            on_progress=_progress_sender(pipe, cancel, parent_pid),
            # The engine reads a batch's loss only for the events it sends.
            batch_event_interval=1.0 / BATCH_EVENTS_PER_SECOND,
        )
    except EngineError as exc:
        logger.warning("training %s failed: %s", spec.training_id, exc)
        _send(pipe, Failure(type(exc).__name__, str(exc)))
    except Exception as exc:
        logger.exception("training %s crashed", spec.training_id)
        _send(pipe, Failure(type(exc).__name__, str(exc)))
    else:
        reason = cancel.reason or ("stop" if cancel_event.is_set() else None)
        _send(pipe, Result(result, reason))
    finally:
        conn.close()
