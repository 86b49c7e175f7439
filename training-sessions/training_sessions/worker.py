"""The training of one session attempt, and the local worker process that runs it.

:func:`train_session` is what any runner runs where the session is placed: it trains
through the engine and reports :mod:`~training_sessions.messages` (each stamped with
the attempt) through a ``send`` callable, so it knows nothing of pipes or clusters.
:func:`run_worker` is the entry point of the local runner's process: a fresh
interpreter (multiprocessing "spawn"), so a crash, an out-of-memory kill or leaked GPU
memory ends with the process and never with the service; it sends over a one-way pipe.

The worker also writes its whole log to ``WorkerSpec.log_path`` when one is given.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType

from training_engine.cancellation import CancellationSignal
from training_engine.errors import EngineError
from training_engine.job import TrainingJob
from training_engine.progress import ProgressCallback, ProgressEvent

from training_sessions.log_lines import SafeLogFormatter
from training_sessions.messages import Failure, LogLine, Progress, Result, WorkerMessage

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


def configure_logging(spec: WorkerSpec, send: Send) -> None:
    """Log to stderr, to the session's log file and to the supervisor, every line timestamped."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(), SupervisorLogHandler(spec, send)]
    if spec.log_path is not None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(spec.log_path, encoding="utf-8"))
    formatter = SafeLogFormatter(LOG_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # Warnings (warnings.warn) are part of the run's log too.
    logging.captureWarnings(True)


def train_session(
    spec: WorkerSpec,
    cancel: WorkerCancel,
    send: Send,
    supervisor_alive: Callable[[], bool] = lambda: True,
) -> None:
    """Train one attempt and report it: progress as it goes, then a result or a failure."""

    def report(message: WorkerMessage) -> None:
        if not send(message):
            logger.warning("supervisor unreachable; could not report %s", type(message).__name__)

    try:
        # Imported here: the service supervises without torch.
        from training_engine.trainer import train

        result = train(
            spec.job,
            cancel=cancel,
            on_progress=_progress_sender(spec, send, cancel, supervisor_alive),
            # The engine reads a batch's loss only for the events it sends.
            batch_event_interval=1.0 / BATCH_EVENTS_PER_SECOND,
        )
    except EngineError as exc:
        logger.warning("training %s failed: %s", spec.training_id, exc)
        report(Failure(spec.attempt, type(exc).__name__, str(exc)))
    except Exception as exc:
        logger.exception("training %s crashed", spec.training_id)
        report(Failure(spec.attempt, type(exc).__name__, str(exc)))
    else:
        reason = cancel.reason or ("stop" if cancel.is_set() else None)
        report(Result(spec.attempt, result, reason))


class PipeSender:
    """The pipe to the supervisor; one message at a time (log records come from any thread)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, message: WorkerMessage) -> bool:
        """False when the supervisor is gone."""
        try:
            with self._lock:
                self._conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            return False
        return True


def run_worker(
    spec: WorkerSpec, stop_requested: CancellationSignal, conn: Connection, parent_pid: int
) -> None:
    """Entry point of the local runner's worker process."""
    # Before anything initialises CUDA: both variables are read once, when it starts.
    os.environ.update(spec.environment)
    # Ctrl-C in a terminal reaches the whole process group: the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cancel = WorkerCancel(stop_requested)
    # systemd/launchd may signal the whole group: checkpoint and stop, to be resumed.
    signal.signal(signal.SIGTERM, cancel.on_sigterm)
    send = PipeSender(conn)
    configure_logging(spec, send)
    logger.info(
        "training %s: worker started (pid %d, attempt %d%s)",
        spec.training_id,
        os.getpid(),
        spec.attempt,
        "".join(f", {name}={value}" for name, value in sorted(spec.environment.items())),
    )
    try:
        train_session(spec, cancel, send, lambda: os.getppid() == parent_pid)
    finally:
        conn.close()
