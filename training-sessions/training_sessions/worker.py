"""The worker process of one session: trains through the engine, reports to the parent.

Runs in a fresh interpreter (multiprocessing "spawn"), so a crash, an
out-of-memory kill or leaked GPU memory ends with the process and never with
the service. Messages to the parent (:data:`WorkerMessage`), over a one-way pipe:

- :class:`Progress`: batch events at most BATCH_EVENTS_PER_SECOND, the rest all
- :class:`Result`: the run finished or was cancelled
- :class:`Failure`: the run raised (the traceback goes to the log only)
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType

from training_engine.cancellation import CancellationSignal
from training_engine.errors import EngineError
from training_engine.job import TrainingJob, TrainingResult
from training_engine.ktrdr_export import export_for_ktrdr
from training_engine.progress import ProgressCallback, ProgressEvent

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


WorkerMessage = Progress | Result | Failure


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs; pickled into the spawned process."""

    training_id: str
    job: TrainingJob


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


def _progress_sender(conn: Connection, cancel: WorkerCancel, parent_pid: int) -> ProgressCallback:
    def send(event: ProgressEvent) -> None:
        if os.getppid() != parent_pid:
            # The service died: checkpoint and stop; its next start resumes us.
            cancel.cancel("parent exited")
            return
        try:
            conn.send(Progress(event))
        except (BrokenPipeError, EOFError, OSError):
            cancel.cancel("parent exited")

    return send


def _send(conn: Connection, message: WorkerMessage) -> None:
    try:
        conn.send(message)
    except (BrokenPipeError, EOFError, OSError):
        logger.warning("parent is gone; could not report %s", type(message).__name__)


def _export_for_ktrdr(job: TrainingJob, result: TrainingResult) -> None:
    """KTRDR's model folder beside our artifact; failing here never fails the run."""
    try:
        export_for_ktrdr(job, result)
    except Exception:
        logger.exception("could not write the KTRDR model folder for %s", result.model_path)


def run_worker(
    spec: WorkerSpec, cancel_event: CancellationSignal, conn: Connection, parent_pid: int
) -> None:
    """Entry point of the worker process."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cancel = WorkerCancel(cancel_event)
    # systemd/launchd may signal the whole group: checkpoint and stop, to be resumed.
    signal.signal(signal.SIGTERM, cancel.on_sigterm)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            format=f"%(asctime)s %(levelname)s worker[{spec.training_id}] %(name)s: %(message)s",
        )
    try:
        # Imported here: the parent supervises without torch.
        from training_engine.trainer import train

        result = train(
            spec.job,
            cancel=cancel,
            on_progress=_progress_sender(conn, cancel, parent_pid),
            # The engine reads a batch's loss only for the events it sends.
            batch_event_interval=1.0 / BATCH_EVENTS_PER_SECOND,
        )
    except EngineError as exc:
        logger.warning("training %s failed: %s", spec.training_id, exc)
        _send(conn, Failure(type(exc).__name__, str(exc)))
    except Exception as exc:
        logger.exception("training %s crashed", spec.training_id)
        _send(conn, Failure(type(exc).__name__, str(exc)))
    else:
        if result.status == "completed":
            _export_for_ktrdr(spec.job, result)
        reason = cancel.reason or ("stop" if cancel_event.is_set() else None)
        _send(conn, Result(result, reason))
    finally:
        conn.close()
