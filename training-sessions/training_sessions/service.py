"""The session runtime's API: submit, read, stop, resume and delete sessions.

One :class:`SessionService` serves a whole service (the host, or the proxy's fallback).
Its methods are synchronous and thread-safe (FastAPI runs them in its thread pool), and
none holds a lock across database I/O or a process start: the store is the one place a
session's state lives, status moves are compare-and-set writes
(:class:`~training_sessions.status_writer.StatusWriter`), and the only memory shared
between threads is the :class:`~training_sessions.session_queue.SessionQueue` (what
waits, what runs), whose lock guards memory only.

Each session taken off the queue gets its own
:class:`~training_sessions.supervisor.SessionSupervisor`, which launches it through the
service's runner (:mod:`training_sessions.runners`; a local worker process by default)
and records it until its final status is written.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from training_engine.progress import DeviceMemory

from training_sessions.errors import (
    CorruptCheckpointError,
    InvalidTransitionError,
    NoCheckpointError,
    NothingToStopError,
    NotResumableError,
    SessionConflictError,
    SessionError,
    SessionNotFoundError,
    ShuttingDownError,
    StartDeadlinePassedError,
)
from training_sessions.observer import NullObserver, SessionObserver, notify
from training_sessions.pending_results import pending_result_file
from training_sessions.recording import record_kept_result
from training_sessions.requests import checkpoint_path, resolve_request, validate_training_id
from training_sessions.runners import SessionRunner
from training_sessions.session_logs import read_log
from training_sessions.session_queue import Capacity, SessionQueue
from training_sessions.status_writer import StatusWriter, status_event
from training_sessions.store import (
    SessionRow,
    SessionStore,
    list_key,
    to_performance,
    to_view,
    utcnow,
)
from training_sessions.supervisor import SessionSupervisor
from training_sessions.types import (
    ACTIVE_STATUSES,
    RuntimeSettings,
    SessionEvent,
    SessionFilter,
    SessionPerformance,
    SessionStatus,
    SessionView,
    TrainingRequest,
)

if TYPE_CHECKING:
    from training_engine.checkpoint import CheckpointPosition

logger = logging.getLogger(__name__)

QUEUED = SessionStatus.QUEUED
RUNNING = SessionStatus.RUNNING
CANCELLED = SessionStatus.CANCELLED
INTERRUPTED = SessionStatus.INTERRUPTED

# How long a read of an unknown id waits for a submit of that id that is committing now.
ADMISSION_WAIT_SECONDS = 60.0
# Given to supervisors beyond the grace at shutdown, to write what their runs reported.
SHUTDOWN_MARGIN_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Resumption:
    """A session queued again, and the checkpoint position it continues from."""

    view: SessionView
    checkpoint: CheckpointPosition


class SessionService:
    """Runs training sessions; see the module docstring.

    Args:
        settings: where things live and how much runs at once.
        observer: receives status changes, epoch timings and the queue length.
        runner: starts each attempt (default: a local worker process per session).
    """

    def __init__(
        self,
        settings: RuntimeSettings,
        *,
        observer: SessionObserver | None = None,
        runner: SessionRunner | None = None,
    ) -> None:
        self.settings = settings
        self._observer: SessionObserver = observer or NullObserver()
        self._store = SessionStore(settings.database_url)
        self._statuses = StatusWriter(self._store, self._observer)
        if runner is None:
            from training_sessions.runners.local import LocalProcessRunner

            runner = LocalProcessRunner.for_settings(settings)
        self._runner = runner
        self._queue: SessionQueue[SessionSupervisor] = SessionQueue(
            Capacity(settings.max_concurrent_jobs, settings.max_queue_size),
            on_length=lambda length: notify(self._observer, "on_queue_length", length),
        )
        self._started = False
        self._stopping = False
        self.recovered_at_start = 0  # sessions a previous run left, queued again by start()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Apply migrations, recover sessions of a previous run, launch what has a slot."""
        if self._started:
            return
        if self._stopping:
            raise ShuttingDownError("this session service was shut down")
        self.settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        self.settings.models_dir.mkdir(parents=True, exist_ok=True)
        self._store.migrate()
        self._recover()
        self._started = True
        self._launch_ready()

    def shutdown(self, grace_seconds: float | None = None) -> None:
        """Refuse new sessions, checkpoint running ones, leave everything resumable.

        Running sessions are asked to stop (they checkpoint); those still running after
        the grace period are killed. Running and queued sessions end ``interrupted``, so
        the next :meth:`start` resumes them.
        """
        if self._stopping:
            return
        self._stopping = True
        grace = self.settings.stop_grace_seconds if grace_seconds is None else grace_seconds
        waiting, running = self._queue.close()
        self._interrupt_waiting(waiting)
        for supervisor in running:
            supervisor.request_stop("shutdown", grace)
        deadline = time.monotonic() + grace + SHUTDOWN_MARGIN_SECONDS
        for supervisor in running:
            if not supervisor.join(max(0.0, deadline - time.monotonic())):
                logger.warning("training %s: its supervisor did not end", supervisor.training_id)
        self._runner.close()
        self._store.dispose()

    def _interrupt_waiting(self, waiting: Sequence[str]) -> None:
        try:
            for training_id in waiting:
                try:
                    self._statuses.move(training_id, QUEUED, INTERRUPTED)
                except InvalidTransitionError:
                    continue  # stopped or deleted meanwhile
        except SQLAlchemyError:
            # Still queued in the database: the next start queues them again.
            logger.warning("database unavailable at shutdown; queued sessions stay queued")

    def _recover(self) -> None:
        """Queue again what a previous run left queued, running or interrupted, oldest first."""
        for row in self._store.with_status((QUEUED, RUNNING, INTERRUPTED)):
            status = SessionStatus(row.status)
            kept_file = pending_result_file(self.settings.checkpoints_dir, row.id)
            if status == RUNNING and kept_file.is_file():
                # It ended while the database was down: record it, never train it again.
                kept = record_kept_result(self._store, self._statuses, kept_file)
                logger.info("training %s: recorded its kept result (%s)", row.id, kept.status)
                if kept.status != INTERRUPTED:
                    continue
                status = INTERRUPTED  # checkpointed at a shutdown: resumed below
            elif status == RUNNING:
                # Its run died with the previous service (kill -9, reboot).
                self._statuses.move(row.id, RUNNING, INTERRUPTED)
                status = INTERRUPTED
            if status == INTERRUPTED:
                if not self.settings.resume_interrupted:
                    continue
                ran_before = row.started_at is not None
                self._statuses.move(
                    row.id,
                    INTERRUPTED,
                    QUEUED,
                    resume_count=row.resume_count + (1 if ran_before else 0),
                    phase="queued",
                )
                logger.info("resuming interrupted training %s", row.id)
            self._queue.append(row.id)
            self.recovered_at_start += 1

    # ------------------------------------------------------------ requests

    def submit(
        self,
        request: TrainingRequest,
        training_id: str | None = None,
        *,
        deadline: datetime | None = None,
    ) -> tuple[SessionView, bool]:
        """Validate, resolve and queue a training; returns (view, created).

        The job resolved here is stored with the session; launches and resumes train
        it as stored and never parse the strategy again. With a ``deadline`` (a caller
        that stops waiting then), a new session is created only if it is committed
        before that instant; the same id again is answered as always.

        Raises:
            InvalidRequestError, StrategyConfigError, DeviceUnavailableError,
            DataFileNotFoundError: the request cannot be trained (a client error).
            SessionConflictError: the id exists with a different request.
            QueueFullError: every slot busy and the queue at its limit.
            ShuttingDownError: the runtime is stopping.
        """
        self._require_started()
        session_id = validate_training_id(training_id) if training_id else uuid.uuid4().hex
        fingerprint = request.fingerprint()
        existing = self._store.get(session_id)
        if existing is not None:
            return _replay(existing, fingerprint)
        job = resolve_request(self.settings, request)
        row = SessionRow(
            id=session_id,
            request=request.to_dict(),
            job=job.model_dump(mode="json"),
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
            phase="queued",
            stopped_early=False,
            attempt=0,
            strategy_name=job.strategy.name,
            symbols_key=list_key(job.strategy.symbols),
            timeframes_key=list_key(job.strategy.timeframes),
        )
        with self._queue.admission(session_id) as enqueue:
            try:
                created = self._store.insert(row, [status_event(QUEUED)], deadline=deadline)
            except IntegrityError:
                # Another process sharing the database took the id first.
                existing = self._store.get(session_id)
                if existing is None:
                    raise
                return _replay(existing, fingerprint)
            if not created and deadline is not None:
                raise StartDeadlinePassedError(
                    f"training '{session_id}' not created: its start request was read after "
                    f"its start_deadline ({deadline.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}); "
                    "the caller no longer waits for it"
                )
            enqueue()
        notify(self._observer, "on_status", session_id, None, QUEUED)
        self._launch_ready()
        return to_view(row), True

    def get(self, training_id: str) -> SessionView:
        """The session's current state. Raises SessionNotFoundError."""
        row = self._store.get(training_id)
        if row is None:
            # A "no such training" must not overtake a submit committing it right now
            # (a proxy that reads 404 after a start's deadline runs the training elsewhere).
            self._queue.wait_while_admitting(training_id, ADMISSION_WAIT_SECONDS)
            row = self._row(training_id)
        return to_view(row)

    def list(
        self,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        started_through: str | None = None,
        *,
        where: SessionFilter | None = None,
    ) -> tuple[list[SessionView], int]:
        """Sessions newest first, and their total count.

        Narrowed to one ``status`` or door (``started_through``), or by ``where``
        (strategy, symbol, timeframe, tag, creation dates), all of them applying.
        """
        where = where or SessionFilter()
        if status is not None:
            where = replace(where, status=status)
        if started_through is not None:
            where = replace(where, started_through=started_through)
        rows, total = self._store.page(where, max(0, limit), max(0, offset))
        return [to_view(row) for row in rows], total

    def performance(self, training_id: str) -> SessionPerformance:
        """Per-epoch history and test/baseline metrics. Raises SessionNotFoundError."""
        row = self._row(training_id)
        return to_performance(row, self._store.epochs(training_id))

    def stop(self, training_id: str, *, refuse_finished: bool = False) -> SessionView:
        """Cancel cooperatively. Raises SessionNotFoundError.

        A queued (or interrupted, not yet resumed) session is cancelled at once; a
        running one finishes its batch, checkpoints and becomes ``cancelled``, or is
        killed after ``stop_grace_seconds``. A finished one is returned as is (KTRDR's
        stop routes answer so), or with ``refuse_finished`` raises NothingToStopError.
        """
        row = self._row(training_id)
        if refuse_finished and SessionStatus(row.status).is_final():
            raise NothingToStopError(
                f"training '{training_id}' is already {row.status}; nothing to stop"
                + (" (resume it to continue)" if row.status != "completed" else "")
            )
        # Off the queue first: from then on no supervisor can take it.
        self._queue.take_waiting(training_id)
        supervisor = self._queue.supervisor(training_id)
        if supervisor is not None and not supervisor.is_final():
            supervisor.request_stop("stop", self.settings.stop_grace_seconds)
            return to_view(row)
        status = SessionStatus(row.status)
        if status in (QUEUED, INTERRUPTED):
            self._statuses.move(training_id, status, CANCELLED, finished_at=utcnow())
            row = self._row(training_id)
        return to_view(row)

    def resume(self, training_id: str) -> Resumption:
        """Queue a failed, cancelled or interrupted session again, from its checkpoint.

        It continues where its last checkpoint left it (bit-identical on CPU to a run
        never stopped) and keeps its id, request and history; its next launch is a
        new attempt. The checkpoint is read here, before the session is queued, so a
        resume that cannot work is refused at once rather than failing in a worker.

        Raises:
            SessionNotFoundError: unknown id.
            NotResumableError: queued, running or completed.
            NoCheckpointError: it stopped before its first checkpoint.
            CorruptCheckpointError: its checkpoint cannot be read.
            QueueFullError: every slot busy and the queue at its limit.
            ShuttingDownError: the runtime is stopping.
        """
        self._require_started()
        row = self._row(training_id)
        status = SessionStatus(row.status)
        # A run whose result is recorded may still be exiting: that is no conflict.
        if not status.is_resumable() or self._queue.is_busy(training_id):
            raise NotResumableError(
                f"training '{training_id}' is {status}: only failed, cancelled or "
                "interrupted trainings can be resumed"
            )
        position = self.checkpoint_position(training_id)
        with self._queue.admission(training_id) as enqueue:
            self._statuses.move(
                training_id,
                status,
                QUEUED,
                resume_count=row.resume_count + 1,
                finished_at=None,
                error=None,
                phase="queued",
            )
            enqueue()
        logger.info("training %s resumed by request (was %s)", training_id, status)
        self._launch_ready()
        return Resumption(view=to_view(self._row(training_id)), checkpoint=position)

    def checkpoint_position(self, training_id: str) -> CheckpointPosition:
        """Where the session's checkpoint would resume it (the file is read and checked).

        Raises:
            NoCheckpointError: no checkpoint written.
            CorruptCheckpointError: the checkpoint cannot be read.
        """
        from training_engine.checkpoint import read_position  # torch: only when resuming
        from training_engine.errors import CheckpointError

        path = checkpoint_path(self.settings, training_id)
        if not path.is_file():
            raise NoCheckpointError(
                f"training '{training_id}' has no checkpoint to resume from (it stopped "
                "before its first checkpoint); start a new training instead"
            )
        try:
            return read_position(path)
        except CheckpointError as exc:
            # Clients learn which file is bad, never the folder it lies in.
            reason = str(exc).replace(str(path), path.name)
            raise CorruptCheckpointError(training_id, reason) from exc

    def set_tags(self, training_id: str, tags: Sequence[str]) -> SessionView:
        """Replace the session's tags (checked by the caller). Raises SessionNotFoundError."""
        self._row(training_id)
        self._store.update(training_id, tags=list(tags), tags_key=list_key(tags))
        return to_view(self._row(training_id))

    def delete(self, training_id: str) -> tuple[str, ...]:
        """Remove a finished session: its rows, checkpoint, kept result and log file.

        Its model stays (a model is deleted on its own). Returns the files removed, each
        as ``<folder setting>/name``.

        Raises:
            SessionNotFoundError: unknown id.
            SessionConflictError: the session is queued or running.
        """
        row = self._row(training_id)
        # A run whose final status is recorded may take a moment to exit; its rows are
        # no longer written, so the session can go.
        if row.status in ACTIVE_STATUSES or self._queue.is_busy(training_id):
            raise SessionConflictError(
                f"training '{training_id}' is {row.status}; stop it before deleting it"
            )
        self._store.delete(training_id)
        return self._remove_files(validate_training_id(training_id))

    def _remove_files(self, training_id: str) -> tuple[str, ...]:
        checkpoints = self.settings.checkpoints_dir
        files = [
            ("checkpoints_dir", checkpoints / f"{training_id}.ckpt"),
            ("checkpoints_dir", pending_result_file(checkpoints, training_id)),
        ]
        if self.settings.log_dir is not None:
            files.append(("log_dir", self.settings.log_dir / f"{training_id}.log"))
        removed: list[str] = []
        for setting, path in files:
            # unlink() removes a link itself, never what it points at.
            if path.is_symlink() or path.is_file():
                path.unlink(missing_ok=True)
                removed.append(f"<{setting}>/{path.name}")
        return tuple(removed)

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
    ) -> Sequence[tuple[str, int, SessionEvent]]:
        """Events of every session with table ids above ``after_id``, each as (session id,
        table id, event); an event's own id counts per session."""
        return self._store.all_events_after(after_id, limit)

    def latest_event_id(self) -> int:
        """The highest event id logged so far (0: none)."""
        return self._store.latest_event_id()

    def log(self, training_id: str, tail: int | None = None) -> str:
        """The last ``tail`` lines of the session's log file. Raises SessionNotFoundError."""
        self._row(training_id)
        return read_log(self.settings.log_dir, training_id, tail)

    # ------------------------------------------------------------ the service as a whole

    def counts(self) -> dict[str, int]:
        """How many sessions run and wait right now (a run whose result is recorded does
        not count as running while it exits)."""
        return self._queue.counts()

    def active_ids(self) -> tuple[str, ...]:
        """Ids of the sessions running now, oldest first; no database access."""
        return self._queue.active_ids()

    def device_memory(self) -> dict[str, DeviceMemory]:
        """What each running session last reported holding on its accelerator, by id."""
        reported: dict[str, DeviceMemory] = {}
        for training_id in self._queue.active_ids():
            supervisor = self._queue.supervisor(training_id)
            memory = None if supervisor is None else supervisor.device_memory
            if memory is not None:
                reported[training_id] = memory
        return reported

    def has_free_slot(self) -> bool:
        """Whether a session submitted now could start at once (the capacity rule's answer)."""
        return self._queue.has_free_slot()

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

    # ------------------------------------------------------------ internals

    def _require_started(self) -> None:
        if self._stopping:
            raise ShuttingDownError("the training service is shutting down")
        if not self._started:
            raise RuntimeError("SessionService.start() must be called before submitting")

    def _row(self, training_id: str) -> SessionRow:
        row = self._store.get(training_id)
        if row is None:
            raise SessionNotFoundError(training_id)
        return row

    def _launch_ready(self) -> None:
        """Give each waiting session a supervisor while slots are free, oldest first."""
        while (supervisor := self._queue.claim_next(self._supervise)) is not None:
            supervisor.start()

    def _supervise(self, training_id: str) -> SessionSupervisor:
        return SessionSupervisor(
            training_id,
            settings=self.settings,
            store=self._store,
            statuses=self._statuses,
            observer=self._observer,
            runner=self._runner,
            on_exit=self._supervisor_ended,
        )

    def _supervisor_ended(self, supervisor: SessionSupervisor) -> None:
        if supervisor.run_lost and not self._stopping:
            self._queue_lost_run(supervisor.training_id)
        self._queue.release(supervisor)
        self._launch_ready()

    def _queue_lost_run(self, training_id: str) -> None:
        """A run lost with its node resumes from its checkpoint, first in line (a new attempt)."""
        try:
            row = self._row(training_id)
            self._statuses.move(
                training_id,
                INTERRUPTED,
                QUEUED,
                resume_count=row.resume_count + 1,
                phase="queued",
            )
        except (SessionError, SQLAlchemyError) as exc:
            # Left interrupted: the next start (or a client's resume) resumes it.
            logger.warning("training %s: lost run not queued again (%s)", training_id, exc)
            return
        self._queue.append(training_id, first=True)
        logger.info("training %s: queued again after its run was lost", training_id)


def _replay(row: SessionRow, fingerprint: str) -> tuple[SessionView, bool]:
    """A repeated submit: the same request gets the existing session."""
    if row.fingerprint != fingerprint:
        raise SessionConflictError(f"training '{row.id}' already exists with a different request")
    return to_view(row), False
