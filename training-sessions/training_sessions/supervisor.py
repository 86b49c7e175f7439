"""One supervisor per running session: it alone owns the run's handle, messages and recording.

A :class:`SessionSupervisor` runs in its own thread, from the moment the service takes
its session off the queue until the session's final status is written::

    begin     queued -> running (attempt + 1), or cancelled / failed / left alone
    launch    the runner starts the attempt; the handle says where it runs
    follow    messages of this attempt are recorded, others ignored; a stop is forwarded,
              and the run is killed when it outlives its grace
    decide    who decides the final status:
                result "completed"                 -> completed
                result "cancelled" after a stop    -> cancelled (with checkpoint_path)
                result "cancelled" otherwise       -> interrupted (shutdown, SIGTERM)
                failure message                    -> failed ("DataValidationError: ...")
                lost with its node (runner says)   -> interrupted, queued again at once
                                                      (cancelled after a client's stop)
                ended without a result             -> failed ("worker exited with code -9"),
                                                      cancelled when killed after a stop,
                                                      interrupted when killed at shutdown
    write     until the database takes the result (or the service stops: the kept copy
              is recorded at the next start), then the slot is freed

What it keeps in memory is its own business and nowhere else: the attempt it runs, the
stop asked of it (why, and when to kill) and whether the final status is decided.
Everything the session reports goes to the store only. Other threads only call
:meth:`request_stop` and read :meth:`is_final`; no lock is held across any I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from training_engine.job import TrainingResult
from training_engine.progress import DeviceMemory

from training_sessions.contract import path_in_answer
from training_sessions.epoch_metrics import epoch_values
from training_sessions.errors import LaunchError, RunnerUnavailableError
from training_sessions.launching import begin_attempt
from training_sessions.messages import Failure, LogLine, Lost, Progress, Result, WorkerMessage
from training_sessions.observer import SessionObserver
from training_sessions.pending_results import pending_result_file
from training_sessions.recording import SessionRecorder
from training_sessions.requests import existing_checkpoint
from training_sessions.runners import Launch, RunHandle, SessionRunner, StopReason
from training_sessions.status_writer import StatusWriter
from training_sessions.store import SessionStore
from training_sessions.types import RuntimeSettings, SessionStatus

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.2
# Between tries of a write the database refused (a launch, a final result).
RETRY_SECONDS = 1.0
# Between checks of a runner that cannot start anything (its cluster does not answer).
RUNNER_RETRY_SECONDS = 5.0


class SessionSupervisor:
    """Runs one session from the queue to its written final status; see the module docstring.

    Args:
        on_exit: called from the supervisor's thread once it is done (frees the slot).
    """

    def __init__(
        self,
        training_id: str,
        *,
        settings: RuntimeSettings,
        store: SessionStore,
        statuses: StatusWriter,
        observer: SessionObserver,
        runner: SessionRunner,
        on_exit: Callable[[SessionSupervisor], None],
    ) -> None:
        self._training_id = training_id
        self._settings = settings
        self._store = store
        self._statuses = statuses
        self._runner = runner
        self._on_exit = on_exit
        self._recorder = SessionRecorder(
            training_id,
            store=store,
            statuses=statuses,
            observer=observer,
            kept_file=pending_result_file(settings.checkpoints_dir, training_id),
        )
        self.attempt = 0  # set once the attempt has begun
        # The run's last report of its own accelerator memory: live state, in memory only.
        self.device_memory: DeviceMemory | None = None
        self._requests = threading.Lock()  # guards the three fields below, nothing else
        self._stop_reason: StopReason | None = None
        self._stop_grace = settings.stop_grace_seconds
        self._kill_at: float | None = None
        self._shutdown = threading.Event()
        self._stop_requested = threading.Event()  # any stop: ends a wait for the runner
        self._final = threading.Event()
        # Read and written by the supervisor's own thread only.
        self._stop_forwarded = False
        self._killed = False
        # Its run went down with its node: the service queues the session again at once.
        self.run_lost = False
        self._thread = threading.Thread(
            target=self._run, name=f"supervisor-{training_id}", daemon=True
        )

    @property
    def training_id(self) -> str:
        return self._training_id

    # ------------------------------------------------------------ other threads

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the supervisor to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_final(self) -> bool:
        """The session's final status is decided (its run may still be exiting)."""
        return self._final.is_set()

    def request_stop(self, reason: StopReason, grace_seconds: float) -> None:
        """Ask the run to checkpoint and stop; kill it if it still runs after the grace.

        A client's stop stays a stop when the service shuts down meanwhile (the session
        ends cancelled), but the earlier kill deadline wins.
        """
        with self._requests:
            if self._stop_reason is None:
                self._stop_reason = reason
                self._stop_grace = grace_seconds
            kill_at = time.monotonic() + grace_seconds
            self._kill_at = kill_at if self._kill_at is None else min(self._kill_at, kill_at)
        self._stop_requested.set()
        if reason == "shutdown":
            self._shutdown.set()

    # ------------------------------------------------------------ its own thread

    def _run(self) -> None:
        try:
            self._wait_for_runner()
            launch = self._begin()
            if launch is not None:
                self._supervise(launch)
        except Exception:
            # Never die silently: the session would stay running with nobody behind it.
            logger.exception("supervisor of training %s failed", self._training_id)
        finally:
            self._on_exit(self)

    def _wait_for_runner(self) -> None:
        """While the runner cannot start anything, the session stays queued; a stop or a
        shutdown ends the wait (``_begin`` then cancels or interrupts it)."""
        said = False
        while True:
            with self._requests:
                if self._stop_reason is not None:
                    return
            try:
                self._runner.check_available()
            except RunnerUnavailableError as exc:
                if not said:
                    said = True
                    logger.warning("training %s waits in the queue: %s", self._training_id, exc)
                    self._recorder.log(
                        LogLine(0, "WARNING", __name__, f"waiting in the queue: {exc}")
                    )
            else:
                if said:
                    logger.info("training %s: the runner answers again", self._training_id)
                return
            if self._stop_requested.wait(RUNNER_RETRY_SECONDS):
                return

    def _begin(self) -> Launch | None:
        """Queued -> running; retried while the database is unavailable."""
        while True:
            with self._requests:
                stop = self._stop_reason
            try:
                launch = begin_attempt(
                    self._settings, self._store, self._statuses, self._training_id, stop
                )
            except SQLAlchemyError as exc:
                self._recorder.outage.failed(exc)
            else:
                self._recorder.outage.succeeded()
                return launch
            if self._shutdown.wait(RETRY_SECONDS):
                return None  # still queued in the store: the next start queues it again

    def _supervise(self, launch: Launch) -> None:
        self.attempt = launch.attempt
        try:
            handle = self._runner.launch(launch)
        except RunnerUnavailableError as exc:
            # Not the session's fault: it goes back to the queue, first in line, after a
            # pause (the next check of the runner waits for it to answer).
            self._shutdown.wait(RUNNER_RETRY_SECONDS)
            self._record_loss(str(exc))
        except LaunchError as exc:
            logger.error("training %s could not be launched: %s", self._training_id, exc)
            self._decide(
                SessionStatus.FAILED,
                error=str(exc),
                checkpoint_path=existing_checkpoint(self._settings, self._training_id),
            )
        else:
            try:
                self._follow(handle)
            finally:
                if not handle.finished():
                    handle.kill()  # only when following it failed
                handle.close()
            if not self.is_final():
                self._record_exit(handle.exit_description())
        self._write_result()

    def _follow(self, handle: RunHandle) -> None:
        """Until the run has ended and its last message is recorded."""
        placed = False
        while True:
            if not placed and handle.placement is not None:
                placed = self._recorder.placement(handle.placement)
            for message in handle.receive(TICK_SECONDS):
                self._handle(message)
            self._forward_stop(handle)
            if handle.finished():
                return

    def _forward_stop(self, handle: RunHandle) -> None:
        with self._requests:
            reason, kill_at, grace = self._stop_reason, self._kill_at, self._stop_grace
        if reason is not None and not self._stop_forwarded:
            handle.request_stop(reason)
            self._stop_forwarded = True
        if kill_at is not None and not self._killed and time.monotonic() > kill_at:
            logger.warning(
                "training %s did not stop within %.1fs; killing it", self._training_id, grace
            )
            handle.kill()
            self._killed = True

    def _handle(self, message: WorkerMessage) -> None:
        if message.attempt != self.attempt:
            logger.warning(
                "training %s: ignoring a message of attempt %d (attempt %d runs)",
                self._training_id,
                message.attempt,
                self.attempt,
            )
            return
        if self.is_final():
            return
        match message:
            case Progress(event=event):
                if event.device_memory is not None:
                    self.device_memory = event.device_memory
                self._recorder.progress(event)
            case Result(result=result, cancel_reason=cancel_reason):
                self._record_result(result, cancel_reason)
            case Failure(error_type=error_type, message=text):
                self._decide(
                    SessionStatus.FAILED,
                    error=f"{error_type}: {text}",
                    # The last good checkpoint stays: the session can be resumed from it.
                    checkpoint_path=existing_checkpoint(self._settings, self._training_id),
                )
            case LogLine():
                self._recorder.log(message)
            case Lost(reason=reason):
                self._record_loss(reason)

    def _record_result(self, result: TrainingResult, cancel_reason: str | None) -> None:
        epochs = [epoch_values(epoch) for epoch in result.history]
        data = result.to_dict()
        checkpoint = data["checkpoint_path"] or existing_checkpoint(
            self._settings, self._training_id
        )
        if result.status == "completed":
            self._decide(
                SessionStatus.COMPLETED,
                epochs=epochs,
                percent=100.0,
                eta_seconds=0.0,
                device=result.device,
                model_path=data["model_path"],
                checkpoint_path=checkpoint,
                test_metrics=data["test_metrics"],
                baseline_metrics=data["baseline_metrics"],
                stopped_early=result.stopped_early,
                events=[("result", _result_entry(data, self._settings.models_dir))],
            )
            return
        with self._requests:
            stopped_by_client = self._stop_reason == "stop"
        if stopped_by_client:
            self._decide(
                SessionStatus.CANCELLED,
                epochs=epochs,
                device=result.device,
                checkpoint_path=checkpoint,
            )
            return
        logger.info(
            "training %s checkpointed (%s); it resumes at the next start",
            self._training_id,
            cancel_reason or self._stop_reason,
        )
        self._decide(
            SessionStatus.INTERRUPTED,
            epochs=epochs,
            device=result.device,
            checkpoint_path=checkpoint,
        )

    def _record_loss(self, reason: str) -> None:
        """The run went down with its machine: no failure of its own, so it is resumed."""
        checkpoint = existing_checkpoint(self._settings, self._training_id)
        with self._requests:
            stop = self._stop_reason
        if stop == "stop":
            self._decide(SessionStatus.CANCELLED, checkpoint_path=checkpoint, error=reason)
            return
        logger.warning(
            "training %s: attempt %d lost (%s); it resumes from its checkpoint",
            self._training_id,
            self.attempt,
            reason,
        )
        # At a shutdown the next start resumes it; otherwise the service does at once.
        self.run_lost = stop is None
        self._decide(SessionStatus.INTERRUPTED, checkpoint_path=checkpoint)

    def _record_exit(self, description: str | None) -> None:
        """The run ended without a result: say why, from what was asked of it."""
        detail = description or "the run ended without reporting a result"
        checkpoint = existing_checkpoint(self._settings, self._training_id)
        with self._requests:
            reason, grace = self._stop_reason, self._stop_grace
        if reason == "stop":
            self._decide(
                SessionStatus.CANCELLED,
                checkpoint_path=checkpoint,
                error=f"worker did not stop within {grace:g}s and was killed ({detail})",
            )
        elif reason == "shutdown":
            self._decide(SessionStatus.INTERRUPTED, checkpoint_path=checkpoint)
        else:
            logger.error("training %s failed: %s", self._training_id, detail)
            self._decide(SessionStatus.FAILED, error=detail, checkpoint_path=checkpoint)

    def _decide(self, status: SessionStatus, **values: Any) -> None:
        self._final.set()
        self._recorder.finish(status, **values)

    def _write_result(self) -> None:
        """Until the database has the result, or the service stops (kept for its next start)."""
        while not self._recorder.write_unwritten():
            if self._shutdown.wait(RETRY_SECONDS):
                logger.warning(
                    "training %s: the service stops before its result could be written; "
                    "the next start records it",
                    self._training_id,
                )
                return


def _result_entry(result: dict[str, Any], models_dir: Path) -> dict[str, Any]:
    """What the ``result`` event says of a completed run (its model relative to models_dir)."""
    keys = ("status", "device", "epochs_completed", "stopped_early")
    return {
        **{key: result.get(key) for key in keys},
        "model_path": path_in_answer(result.get("model_path"), models_dir),
        "test_metrics": result.get("test_metrics"),
        "baseline_metrics": result.get("baseline_metrics"),
    }
