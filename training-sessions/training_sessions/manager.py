"""The session runtime: a FIFO queue, worker processes, persistence and recovery.

One :class:`SessionManager` serves a whole service. Its public methods are
synchronous and thread-safe (FastAPI runs them in its thread pool). A
supervisor thread starts queued sessions when a slot frees up, receives the
workers' events over pipes, writes progress and per-epoch metrics as they
happen, notices dead workers and enforces the stop grace period.

Statuses move only as :class:`~training_sessions.types.SessionStatus` allows,
through :meth:`SessionManager._set_status`; who decides a session's final status::

    worker result "completed"                  -> completed
    worker result "cancelled" after stop()     -> cancelled (with checkpoint_path)
    worker result "cancelled" otherwise        -> interrupted (shutdown, SIGTERM; resumed at start)
    worker error message                       -> failed ("DataValidationError: ...")
    worker gone without a result               -> failed ("worker exited with code -9"),
                                                  cancelled when killed after the stop grace,
                                                  interrupted when killed at shutdown
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from training_engine.errors import EngineError
from training_engine.job import TrainingResult
from training_engine.progress import ProgressEvent

from training_sessions import pending_results
from training_sessions.errors import (
    InvalidTransitionError,
    NotResumableError,
    QueueFullError,
    SessionConflictError,
    SessionError,
    SessionNotFoundError,
    ShuttingDownError,
    StartDeadlinePassedError,
)
from training_sessions.pending_results import PendingResult, pending_result_file
from training_sessions.requests import (
    build_job,
    checkpoint_path,
    resolve_request,
    session_log_path,
    validate_training_id,
)
from training_sessions.session_job import SessionJob
from training_sessions.session_logs import read_log
from training_sessions.store import (
    EpochRecord,
    NewEvent,
    SessionRow,
    SessionStore,
    to_performance,
    to_view,
    utcnow,
)
from training_sessions.types import (
    ACTIVE_STATUSES,
    RESUMABLE_STATUSES,
    RuntimeSettings,
    SessionEvent,
    SessionPerformance,
    SessionPhase,
    SessionStatus,
    SessionView,
    TrainingRequest,
)
from training_sessions.worker import (
    Failure,
    LogLine,
    Progress,
    Result,
    WorkerMessage,
    WorkerSpec,
    run_worker,
)

logger = logging.getLogger(__name__)

QUEUED = SessionStatus.QUEUED
RUNNING = SessionStatus.RUNNING
COMPLETED = SessionStatus.COMPLETED
FAILED = SessionStatus.FAILED
CANCELLED = SessionStatus.CANCELLED
INTERRUPTED = SessionStatus.INTERRUPTED

SUPERVISOR_TICK_SECONDS = 0.2
# Log lines kept in a session's event log; the rest are in its log file only.
MAX_LOG_EVENTS = 1000
METRIC_NAMES = ("train_loss", "val_loss", "val_accuracy", "learning_rate", "samples_per_second")


class SessionObserver(Protocol):
    """Metrics hook a service implements (Prometheus); subclass it and override what you need."""

    def on_status(self, training_id: str, old: str | None, new: str) -> None:
        """A session moved from ``old`` (None when just created) to ``new``."""
        return None

    def on_epoch(self, training_id: str, epoch_seconds: float, samples_per_second: float) -> None:
        """A session finished an epoch."""
        return None

    def on_queue_length(self, length: int) -> None:
        """The number of queued sessions changed."""
        return None


class NullObserver(SessionObserver):
    """Observes nothing."""


@dataclass(slots=True)
class _Worker:
    """The parent's handle on one running session."""

    training_id: str
    process: BaseProcess
    conn: Connection
    cancel: ProcessEvent
    percent: float
    metrics: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None  # "stop" (a client) or "shutdown" (the service)
    stop_requested_at: float | None = None
    killed: bool = False
    conn_open: bool = True
    final: bool = False  # a final status has been recorded
    log_events: int = 0  # log lines in the event log so far


class SessionManager:
    """Runs training sessions in worker processes; see the module docstring.

    Args:
        settings: where things live and how much runs at once.
        observer: receives status changes, epoch timings and the queue length.
    """

    def __init__(
        self, settings: RuntimeSettings, *, observer: SessionObserver | None = None
    ) -> None:
        self.settings = settings
        self._observer: SessionObserver = observer or NullObserver()
        self._store = SessionStore(settings.database_url)
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.RLock()
        self._queue: deque[str] = deque()
        self._running: dict[str, _Worker] = {}
        # Final results the database could not take yet (also kept on disk).
        self._pending: dict[str, PendingResult] = {}
        self._database_down_since: float | None = None
        self._started = False
        self.recovered_at_start = 0  # sessions a previous run left, queued again by start()
        self._closed = False
        self._shutting_down = False
        self._halt = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Apply migrations, recover sessions of a previous run, start the supervisor."""
        with self._lock:
            if self._started:
                return
            if self._closed:
                raise ShuttingDownError("this session manager was shut down")
            self.settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
            self.settings.models_dir.mkdir(parents=True, exist_ok=True)
            self._store.migrate()
            self._recover()
            self._supervisor = threading.Thread(
                target=self._supervise, name="session-supervisor", daemon=True
            )
            self._supervisor.start()
            self._started = True

    def shutdown(self, grace_seconds: float | None = None) -> None:
        """Refuse new sessions, checkpoint running ones, leave everything resumable.

        Running sessions are cancelled cooperatively (they checkpoint); those not
        gone after the grace period are killed. Running and queued sessions end
        ``interrupted``, so the next :meth:`start` resumes them.
        """
        grace = self.settings.stop_grace_seconds if grace_seconds is None else grace_seconds
        with self._lock:
            if self._closed:
                return
            self._shutting_down = True
            try:
                for training_id in list(self._queue):
                    row = self._store.get(training_id)
                    if row is not None and row.status == QUEUED:
                        self._set_status(training_id, QUEUED, INTERRUPTED)
            except SQLAlchemyError:
                # Still queued in the database: the next start queues them again.
                logger.warning("database unavailable at shutdown; queued sessions stay queued")
            self._queue.clear()
            self._notify_queue_length()
            for worker in self._running.values():
                if worker.stop_reason is None:
                    worker.stop_reason = "shutdown"
                worker.cancel.set()
        self._wait_until_idle(grace)
        with self._lock:
            for worker in self._running.values():
                if worker.process.is_alive():
                    logger.warning(
                        "training %s did not checkpoint within %.1fs; killing its worker",
                        worker.training_id,
                        grace,
                    )
                    worker.killed = True
                    worker.process.kill()
        # Killed workers are reaped (and marked) by the supervisor within a tick.
        self._wait_until_idle(10.0)
        self._halt.set()
        self._wake()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10.0)
        with self._lock:
            for worker in list(self._running.values()):
                self._reap(worker)
            self._closed = True
        self._wake_reader.close()
        self._wake_writer.close()
        self._store.dispose()

    # ------------------------------------------------------------ requests

    def submit(
        self,
        request: TrainingRequest,
        training_id: str | None = None,
        *,
        deadline: datetime | None = None,
    ) -> tuple[SessionView, bool]:
        """Validate, resolve and queue a training; returns (view, created).

        The job resolved here is stored with the session; launches and resumes
        train it and never read the strategy files again. With a ``deadline`` (a
        caller that stops waiting then), a new session is created only if it is
        committed before that instant; the same id again is answered as always.

        Raises:
            InvalidRequestError, StrategyConfigError, DeviceUnavailableError,
            DataFileNotFoundError: the request cannot be trained (a client error).
            SessionConflictError: the id exists with a different request.
            QueueFullError: every worker busy and the queue at its limit.
            ShuttingDownError: the runtime is stopping.
        """
        self._require_started()
        if self._shutting_down:
            raise ShuttingDownError("the training service is shutting down")
        session_id = validate_training_id(training_id) if training_id else uuid.uuid4().hex
        fingerprint = request.fingerprint()
        existing = self._store.get(session_id)
        if existing is not None:
            return self._replay(existing, fingerprint)
        job = resolve_request(self.settings, request)
        with self._lock:
            if self._shutting_down:
                raise ShuttingDownError("the training service is shutting down")
            existing = self._store.get(session_id)
            if existing is not None:
                return self._replay(existing, fingerprint)
            self._check_capacity()
            row = SessionRow(
                id=session_id,
                request=request.to_dict(),
                job=job.to_dict(),
                fingerprint=fingerprint,
                status=QUEUED.value,
                epoch=0,
                total_epochs=job.strategy.training.epochs,
                batch=0,
                total_batches=0,
                percent=0.0,
                eta_seconds=None,
                metrics={},
                device=job.device,
                created_at=utcnow(),
                resume_count=0,
                phase=SessionPhase.QUEUED.value,
                stopped_early=False,
            )
            try:
                created = self._store.insert(row, deadline=deadline)
            except IntegrityError:
                # Another process sharing the database took the id first.
                existing = self._store.get(session_id)
                if existing is None:
                    raise
                return self._replay(existing, fingerprint)
            if not created and deadline is not None:
                raise StartDeadlinePassedError(
                    f"training '{session_id}' not created: its start request was read after "
                    f"its start_deadline ({deadline.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}); "
                    "the caller no longer waits for it"
                )
            self._store.append_events(session_id, [_status_event(QUEUED)])
            self._queue.append(session_id)
            self._notify("on_status", session_id, None, QUEUED)
            self._notify_queue_length()
        self._wake()
        return to_view(row), True

    def get(self, training_id: str) -> SessionView:
        """The session's current state. Raises SessionNotFoundError."""
        row = self._store.get(training_id)
        if row is None:
            # A "no such training" must not overtake a submit committing it right now
            # (a proxy that reads 404 after a start's deadline runs the training elsewhere).
            with self._lock:
                row = self._row(training_id)
        return to_view(row)

    def list(
        self, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[SessionView], int]:
        """Sessions newest first, optionally of one status, and their total count."""
        rows, total = self._store.page(status, max(0, limit), max(0, offset))
        return [to_view(row) for row in rows], total

    def performance(self, training_id: str) -> SessionPerformance:
        """Per-epoch history and test/baseline metrics. Raises SessionNotFoundError."""
        row = self._row(training_id)
        return to_performance(row, self._store.epochs(training_id))

    def stop(self, training_id: str) -> SessionView:
        """Cancel cooperatively; idempotent. Raises SessionNotFoundError.

        A queued (or interrupted, not yet resumed) session is cancelled at once; a
        running one finishes its batch, checkpoints and becomes ``cancelled``,
        or is killed after ``stop_grace_seconds``. A finished one is returned as is.
        """
        with self._lock:
            row = self._row(training_id)
            worker = self._running.get(training_id)
            if worker is not None:
                if worker.stop_reason is None:
                    worker.stop_reason = "stop"
                    worker.stop_requested_at = time.monotonic()
                    worker.cancel.set()
                return to_view(row)
            if training_id in self._queue:
                self._queue.remove(training_id)
                self._notify_queue_length()
            status = SessionStatus(row.status)
            if status in (QUEUED, INTERRUPTED):
                self._set_status(training_id, status, CANCELLED, finished_at=utcnow())
                row = self._row(training_id)
        return to_view(row)

    def resume(self, training_id: str) -> SessionView:
        """Queue a failed, cancelled or interrupted session again, from its checkpoint.

        It continues where its last checkpoint left it (bit-identical on CPU to a
        run never stopped) and keeps its id, request and history.

        Raises:
            SessionNotFoundError: unknown id.
            NotResumableError: queued, running or completed, or no checkpoint to resume from.
            QueueFullError: every worker busy and the queue at its limit.
            ShuttingDownError: the runtime is stopping.
        """
        self._require_started()
        with self._lock:
            row = self._row(training_id)
            status = SessionStatus(row.status)
            worker = self._running.get(training_id)
            # A worker whose result is recorded may still be exiting: that is no conflict.
            if status not in RESUMABLE_STATUSES or (worker is not None and not worker.final):
                raise NotResumableError(
                    f"training '{training_id}' is {status}: only failed, cancelled or "
                    "interrupted trainings can be resumed"
                )
            if self._existing_checkpoint(training_id) is None:
                raise NotResumableError(
                    f"training '{training_id}' has no checkpoint to resume from (it stopped "
                    "before its first checkpoint); start a new training instead"
                )
            self._check_capacity()
            self._set_status(
                training_id,
                status,
                QUEUED,
                resume_count=row.resume_count + 1,
                finished_at=None,
                error=None,
            )
            self._queue.append(training_id)
            self._notify_queue_length()
            row = self._row(training_id)
        logger.info("training %s resumed by request (was %s)", training_id, status)
        self._wake()
        return to_view(row)

    def delete(self, training_id: str) -> None:
        """Remove a finished session's rows (model files stay).

        Raises:
            SessionNotFoundError: unknown id.
            SessionConflictError: the session is queued or running.
        """
        with self._lock:
            row = self._row(training_id)
            worker = self._running.get(training_id)
            # A worker whose final status is recorded may take a moment to exit; its
            # rows are no longer written, so the session can go.
            if (
                row.status in ACTIVE_STATUSES
                or (worker is not None and not worker.final)
                or training_id in self._queue
            ):
                raise SessionConflictError(
                    f"training '{training_id}' is {row.status}; stop it before deleting it"
                )
            self._store.delete(training_id)

    def events(
        self, training_id: str, after_id: int = 0, limit: int = 500
    ) -> Sequence[SessionEvent]:
        """The session's logged events with ids above ``after_id``, oldest first.

        Raises SessionNotFoundError.
        """
        self._row(training_id)
        return self._store.events_after(training_id, after_id, limit)

    def all_events_after(
        self, after_id: int, limit: int = 500
    ) -> Sequence[tuple[str, SessionEvent]]:
        """Events of every session with ids above ``after_id``, each with its session's id."""
        return self._store.all_events_after(after_id, limit)

    def latest_event_id(self) -> int:
        """The highest event id logged so far (0: none)."""
        return self._store.latest_event_id()

    def log(self, training_id: str, tail: int | None = None) -> str:
        """The last ``tail`` lines of the session's log file. Raises SessionNotFoundError."""
        self._row(training_id)
        return read_log(self.settings.log_dir, training_id, tail)

    def counts(self) -> dict[str, int]:
        """How many sessions run and wait right now."""
        with self._lock:
            # A worker whose result is recorded may take a moment to exit: not running.
            running = sum(1 for worker in self._running.values() if not worker.final)
            return {"running": running, "queued": len(self._queue)}

    def active_ids(self) -> tuple[str, ...]:
        """Ids of the sessions running now, oldest first; no database access."""
        with self._lock:
            return tuple(w.training_id for w in self._running.values() if not w.final)

    def status_counts(self) -> dict[str, int]:
        """Sessions in each status, counted in the database now (every status, 0 included)."""
        counted = self._store.count_by_status()
        return {status.value: counted.get(status.value, 0) for status in SessionStatus}

    def database_reachable(self) -> bool:
        return self._store.ping()

    def wait_for(self, training_id: str, statuses: set[str], timeout: float) -> SessionView:
        """Poll until the session reaches one of ``statuses``; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.get(training_id)
            if view.status in statuses:
                return view
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"training {training_id} is {view.status} after {timeout:.1f}s, "
                    f"expected one of {sorted(statuses)}"
                )
            time.sleep(0.05)

    # ------------------------------------------------------------ internals: state

    def _require_started(self) -> None:
        if self._closed or self._shutting_down:
            raise ShuttingDownError("the training service is shutting down")
        if not self._started:
            raise RuntimeError("SessionManager.start() must be called before submitting")

    def _row(self, training_id: str) -> SessionRow:
        row = self._store.get(training_id)
        if row is None:
            raise SessionNotFoundError(training_id)
        return row

    def _replay(self, row: SessionRow, fingerprint: str) -> tuple[SessionView, bool]:
        """A repeated submit: the same request gets the existing session."""
        if row.fingerprint != fingerprint:
            raise SessionConflictError(
                f"training '{row.id}' already exists with a different request"
            )
        return to_view(row), False

    def _check_capacity(self) -> None:
        free_slots = max(0, self.settings.max_concurrent_jobs - len(self._running))
        waiting = len(self._queue) + 1 - free_slots
        if waiting > self.settings.max_queue_size:
            raise QueueFullError(
                f"queue full: {len(self._running)} running and {len(self._queue)} queued "
                f"(max_queue_size {self.settings.max_queue_size}); retry later"
            )

    def _set_status(
        self,
        training_id: str,
        old: SessionStatus,
        new: SessionStatus,
        events: Sequence[NewEvent] = (),
        **values: Any,
    ) -> None:
        """The one place a session changes status (other columns may change with it).

        The status event (after ``events``) is logged in the same transaction.

        Raises:
            InvalidTransitionError: the transition table forbids ``old -> new`` (a
                terminal status never changes), or the stored status is no longer ``old``.
        """
        if not old.can_move_to(new):
            raise InvalidTransitionError(f"training {training_id}: {old} -> {new} is not allowed")
        if new not in ACTIVE_STATUSES:
            values.setdefault("phase", None)
        logged = [*events, _status_event(new, values.get("error"))]
        if not self._store.move(training_id, old, new, logged, **values):
            row = self._store.get(training_id)
            now = row.status if row is not None else "deleted"
            raise InvalidTransitionError(
                f"training {training_id}: cannot move {old} -> {new}, it is {now}"
            )
        self._notify("on_status", training_id, old, new)

    def _notify(self, method: str, *args: Any) -> None:
        # A broken metrics hook must never break training.
        try:
            getattr(self._observer, method)(*args)
        except Exception:
            logger.exception("session observer %s failed", method)

    def _notify_queue_length(self) -> None:
        self._notify("on_queue_length", len(self._queue))

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def _wait_until_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return
            time.sleep(0.05)

    def _recover(self) -> None:
        """Re-queue what a previous run left queued, running or interrupted, oldest first."""
        for row in self._store.with_status((QUEUED, RUNNING, INTERRUPTED)):
            status = SessionStatus(row.status)
            kept = pending_results.load(self._pending_file(row.id))
            if status == RUNNING and kept is not None:
                # It ended while the database was down: record it, never train it again.
                self._write_final(kept)
                self._pending_file(row.id).unlink(missing_ok=True)
                logger.info("training %s: recorded its kept result (%s)", row.id, kept.status)
                if kept.status != INTERRUPTED:
                    continue
                status = INTERRUPTED  # checkpointed at a shutdown: resumed below
            elif status == RUNNING:
                # Its process died with the previous service (kill -9, reboot).
                self._set_status(row.id, RUNNING, INTERRUPTED)
                status = INTERRUPTED
            if status == INTERRUPTED:
                if not self.settings.resume_interrupted:
                    continue
                ran_before = row.started_at is not None
                self._set_status(
                    row.id,
                    INTERRUPTED,
                    QUEUED,
                    resume_count=row.resume_count + (1 if ran_before else 0),
                    phase=SessionPhase.QUEUED.value,
                )
                logger.info("resuming interrupted training %s", row.id)
            self._queue.append(row.id)
            self.recovered_at_start += 1
        self._notify_queue_length()

    # ------------------------------------------------------------ internals: supervisor

    def _supervise(self) -> None:
        while not self._halt.is_set():
            try:
                self._tick()
            except Exception:
                # E.g. the database briefly unreachable: log, wait, carry on.
                logger.exception("session supervisor error")
                self._halt.wait(1.0)

    def _tick(self) -> None:
        with self._lock:
            try:
                self._retry_pending()
                if not self._shutting_down:
                    self._launch_ready()
            except SQLAlchemyError as exc:
                # Workers are still read and reaped below; this is retried next round.
                self._database_unavailable(exc)
            workers = list(self._running.values())
        waitables: list[Any] = [self._wake_reader]
        for worker in workers:
            waitables.append(worker.process.sentinel)
            if worker.conn_open:
                waitables.append(worker.conn)
        ready = wait_ready(waitables, timeout=SUPERVISOR_TICK_SECONDS)
        if self._wake_reader in ready:
            with contextlib.suppress(OSError):
                while self._wake_reader.recv(4096):
                    pass
        now = time.monotonic()
        with self._lock:
            for worker in workers:
                self._drain(worker)
                if not worker.process.is_alive():
                    self._reap(worker)
                elif (
                    worker.stop_requested_at is not None
                    and not worker.killed
                    and now - worker.stop_requested_at > self.settings.stop_grace_seconds
                ):
                    logger.warning(
                        "training %s did not stop within %.1fs; killing its worker",
                        worker.training_id,
                        self.settings.stop_grace_seconds,
                    )
                    worker.killed = True
                    worker.process.kill()

    def _launch_ready(self) -> None:
        """Start queued sessions, oldest first, while slots are free."""
        while self._queue and len(self._running) < self.settings.max_concurrent_jobs:
            training_id = self._queue[0]
            if training_id in self._running:
                return  # resumed while its last worker still exits: launched once reaped
            # Read and write before taking it off the queue: a database error leaves it there.
            row = self._store.get(training_id)
            if row is None or row.status != QUEUED:
                self._dequeue(training_id)
                continue
            resumed = row.started_at is not None
            try:
                stored = self._stored_job(row)
            except (EngineError, SessionError, ValueError, KeyError) as exc:
                self._set_status(
                    training_id,
                    QUEUED,
                    FAILED,
                    error=f"{type(exc).__name__}: {exc}",
                    finished_at=utcnow(),
                )
                self._dequeue(training_id)
                continue
            self._set_status(
                training_id,
                QUEUED,
                RUNNING,
                started_at=row.started_at or utcnow(),
                device=stored.device,
                error=None,
                phase=SessionPhase.STARTING.value,
            )
            log_events = self._store.count_events(training_id, "log")
            self._dequeue(training_id)
            job = build_job(self.settings, training_id, stored, resume=resumed)
            cancel = self._context.Event()
            receiver, sender = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=run_worker,
                args=(
                    WorkerSpec(training_id, job, log_path=self._log_path(training_id)),
                    cancel,
                    sender,
                    os.getpid(),
                ),
                name=f"training-{training_id}",
                # Daemonic: if the service exits without shutdown(), multiprocessing
                # terminates the workers (SIGTERM -> checkpoint), to be resumed later.
                daemon=True,
            )
            process.start()
            sender.close()
            self._running[training_id] = _Worker(
                log_events=log_events,
                training_id=training_id,
                process=process,
                conn=receiver,
                cancel=cancel,
                percent=float(row.percent or 0.0),
                metrics=dict(row.metrics or {}),
            )
            logger.info(
                "training %s started (pid %s%s)",
                training_id,
                process.pid,
                f", resuming from {job.resume_from}" if job.resume_from else "",
            )

    def _stored_job(self, row: SessionRow) -> SessionJob:
        """The job stored at submit; a row older than migration 0002 resolves it once now."""
        if row.job is not None:
            return SessionJob.from_dict(row.job)
        job = resolve_request(self.settings, TrainingRequest.from_dict(row.request))
        self._store.update(row.id, job=job.to_dict())
        return job

    def _drain(self, worker: _Worker) -> None:
        """Handle every message the worker has sent so far."""
        while worker.conn_open:
            try:
                if not worker.conn.poll():
                    return
                message = worker.conn.recv()
            except (EOFError, OSError):
                worker.conn_open = False
                return
            except Exception:
                # A message cut short by a killed worker does not unpickle.
                logger.exception("unreadable message from training %s", worker.training_id)
                worker.conn_open = False
                return
            self._handle(worker, message)

    def _handle(self, worker: _Worker, message: WorkerMessage) -> None:
        if worker.final:
            return
        match message:
            case Progress(event):
                self._record_progress(worker, event)
            case Result(result, cancel_reason):
                self._record_result(worker, result, cancel_reason)
            case Failure(error_type, text):
                self._finish(
                    worker,
                    FAILED,
                    error=f"{error_type}: {text}",
                    # The last good checkpoint stays: the session can be resumed from it.
                    checkpoint_path=self._existing_checkpoint(worker.training_id),
                )
            case LogLine():
                self._record_log(worker, message)

    def _record_progress(self, worker: _Worker, event: ProgressEvent) -> None:
        if event.kind == "phase":
            self._record_phase(worker, event)
            return
        # Never let percent go backwards, e.g. when a resume replays lost batches.
        worker.percent = max(worker.percent, event.percent)
        for name in METRIC_NAMES:
            value = getattr(event, name)
            if value is not None:
                # A diverged loss is kept as null: JSON (and PostgreSQL's json) has no NaN.
                worker.metrics[name] = value if math.isfinite(value) else None
        try:
            self._write_progress(worker, event)
            self._database_available()
        except SQLAlchemyError as exc:
            # Progress is refreshed by the next event; the final result is kept (_finish).
            self._database_unavailable(exc)

    def _write_progress(self, worker: _Worker, event: ProgressEvent) -> None:
        self._store.update(
            worker.training_id,
            epoch=event.epoch,
            total_epochs=event.total_epochs,
            batch=event.batch,
            total_batches=event.total_batches,
            percent=worker.percent,
            eta_seconds=event.eta_seconds,
            metrics=dict(worker.metrics),
        )
        self._store.append_events(worker.training_id, [_progress_event(event, worker.percent)])
        if event.kind == "epoch":
            # The epoch's batch events are summed up by its epoch event: the log stays small.
            self._store.prune_progress_events(worker.training_id)
            self._store.upsert_epoch(worker.training_id, EpochRecord.of(event))
            best = self._store.best_epoch(worker.training_id)
            self._store.update(worker.training_id, best_epoch=best)
            self._notify(
                "on_epoch",
                worker.training_id,
                event.epoch_seconds or 0.0,
                event.samples_per_second or 0.0,
            )

    def _record_phase(self, worker: _Worker, event: ProgressEvent) -> None:
        if event.phase is None:
            return
        phase = SessionPhase(event.phase)
        try:
            self._store.update(worker.training_id, phase=phase.value)
            self._store.append_events(worker.training_id, [("phase", {"phase": phase.value})])
        except SQLAlchemyError as exc:
            # Like progress: the next phase or event brings the row up to date.
            self._database_unavailable(exc)

    def _record_log(self, worker: _Worker, line: LogLine) -> None:
        if worker.log_events > MAX_LOG_EVENTS:
            return
        worker.log_events += 1
        data: dict[str, Any] = {"level": line.level, "logger": line.logger, "message": line.message}
        if worker.log_events > MAX_LOG_EVENTS:
            data = {"level": "INFO", "logger": __name__, "message": LOG_EVENTS_CUT}
        try:
            self._store.append_events(worker.training_id, [("log", data)])
        except SQLAlchemyError as exc:
            self._database_unavailable(exc)  # the line stays in the training's log file

    def _record_result(
        self, worker: _Worker, result: TrainingResult, cancel_reason: str | None
    ) -> None:
        epochs = [EpochRecord.of(epoch) for epoch in result.history]
        data = result.to_dict()
        checkpoint = data["checkpoint_path"] or self._existing_checkpoint(worker.training_id)
        if result.status == "completed":
            self._finish(
                worker,
                COMPLETED,
                epochs=epochs,
                percent=100.0,
                eta_seconds=0.0,
                device=result.device,
                model_path=data["model_path"],
                checkpoint_path=checkpoint,
                test_metrics=data["test_metrics"],
                baseline_metrics=data["baseline_metrics"],
                stopped_early=result.stopped_early,
                events=[("result", _result_data(data))],
            )
            return
        if worker.stop_reason == "stop":
            self._finish(
                worker, CANCELLED, epochs=epochs, device=result.device, checkpoint_path=checkpoint
            )
            return
        logger.info(
            "training %s checkpointed (%s); it resumes at the next start",
            worker.training_id,
            cancel_reason or worker.stop_reason,
        )
        self._finish(
            worker, INTERRUPTED, epochs=epochs, device=result.device, checkpoint_path=checkpoint
        )

    def _reap(self, worker: _Worker) -> None:
        """The worker process has ended: record why if it did not say, and free its slot."""
        self._drain(worker)
        worker.process.join(timeout=5.0)
        code = worker.process.exitcode
        if not worker.final:
            checkpoint = self._existing_checkpoint(worker.training_id)
            if worker.stop_reason == "stop":
                self._finish(
                    worker,
                    CANCELLED,
                    checkpoint_path=checkpoint,
                    error=(
                        f"worker did not stop within {self.settings.stop_grace_seconds:g}s "
                        f"and was killed (exit code {code})"
                    ),
                )
            elif worker.stop_reason == "shutdown":
                self._finish(worker, INTERRUPTED, checkpoint_path=checkpoint)
            else:
                detail = (
                    "worker exited without reporting a result"
                    if code == 0
                    else f"worker exited with code {code}"
                )
                logger.error("training %s failed: %s", worker.training_id, detail)
                self._finish(worker, FAILED, error=detail, checkpoint_path=checkpoint)
        worker.conn.close()
        self._running.pop(worker.training_id, None)

    def _finish(
        self,
        worker: _Worker,
        status: SessionStatus,
        *,
        epochs: Sequence[EpochRecord] = (),
        events: Sequence[NewEvent] = (),
        **values: Any,
    ) -> None:
        """Record a final (or interrupted) status once; kept and retried if the database fails."""
        worker.final = True
        if status.is_terminal():
            values["finished_at"] = utcnow()
        result = PendingResult(worker.training_id, status, values, [*epochs], [*events])
        try:
            self._write_final(result)
        except SQLAlchemyError as exc:
            self._database_unavailable(exc)
            logger.warning(
                "training %s ended %s but the database is unavailable: result kept in %s "
                "and retried until written",
                worker.training_id,
                status,
                self._pending_file(worker.training_id),
            )
            self._pending[worker.training_id] = result
            try:
                pending_results.keep(self._pending_file(worker.training_id), result)
            except OSError:
                logger.exception(
                    "training %s: could not keep its result on disk", result.training_id
                )

    def _write_final(self, result: PendingResult) -> None:
        """Epochs, then the status move; an InvalidTransitionError is logged, not raised."""
        for epoch in result.epochs:
            self._store.upsert_epoch(result.training_id, epoch)
        try:
            self._set_status(
                result.training_id, RUNNING, result.status, result.events, **result.values
            )
            self._database_available()
        except InvalidTransitionError:
            # E.g. another process changed its row: refused, and said so.
            logger.exception(
                "training %s: result %s not recorded", result.training_id, result.status
            )

    def _retry_pending(self) -> None:
        """Write the results kept while the database was down, oldest first."""
        for training_id, result in list(self._pending.items()):
            self._write_final(result)  # SQLAlchemyError: still down, next round
            del self._pending[training_id]
            self._pending_file(training_id).unlink(missing_ok=True)
            logger.info("training %s: kept result %s written", training_id, result.status)

    def _database_available(self) -> None:
        if self._database_down_since is not None:
            logger.info(
                "database available again after %.1fs",
                time.monotonic() - self._database_down_since,
            )
            self._database_down_since = None

    def _database_unavailable(self, exc: SQLAlchemyError) -> None:
        if self._database_down_since is None:
            self._database_down_since = time.monotonic()
            logger.error("database unavailable, retrying every round: %s", exc)

    def _dequeue(self, training_id: str) -> None:
        with contextlib.suppress(ValueError):
            self._queue.remove(training_id)
        self._notify_queue_length()

    def _pending_file(self, training_id: str) -> Path:
        return pending_result_file(self.settings.checkpoints_dir, training_id)

    def _log_path(self, training_id: str) -> Path | None:
        if self.settings.log_dir is None:
            return None
        return session_log_path(self.settings.log_dir, training_id)

    def _existing_checkpoint(self, training_id: str) -> str | None:
        path = checkpoint_path(self.settings, training_id)
        return str(path) if path.is_file() else None


LOG_EVENTS_CUT = f"more than {MAX_LOG_EVENTS} log lines: the rest are in the training's log only"
PROGRESS_FIELDS = ("train_loss", "learning_rate", "eta_seconds")
EPOCH_EVENT_FIELDS = (*METRIC_NAMES, "epoch_seconds", "eta_seconds")


def _status_event(status: SessionStatus, error: str | None = None) -> NewEvent:
    return ("status", {"status": status.value, "error": error})


def _progress_event(event: ProgressEvent, percent: float) -> NewEvent:
    """A batch (``progress``) or ``epoch`` entry of the event log."""
    data: dict[str, Any] = {
        "epoch": event.epoch,
        "total_epochs": event.total_epochs,
        "batch": event.batch,
        "total_batches": event.total_batches,
        "percent": percent,
    }
    names = EPOCH_EVENT_FIELDS if event.kind == "epoch" else PROGRESS_FIELDS
    data.update({name: getattr(event, name) for name in names})
    return ("epoch" if event.kind == "epoch" else "progress", data)


def _result_data(result: dict[str, Any]) -> dict[str, Any]:
    """What the ``result`` event says of a completed run."""
    keys = ("status", "device", "epochs_completed", "stopped_early", "model_path")
    return {
        **{key: result.get(key) for key in keys},
        "test_metrics": result.get("test_metrics"),
        "baseline_metrics": result.get("baseline_metrics"),
    }
