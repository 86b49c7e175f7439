"""Recording one running session into the store: progress, epochs, log lines, its result.

The store is the only place a session's progress lives: every event is written as it
comes (:meth:`SessionStore.record_progress` keeps ``percent`` from going back and merges
the latest metrics in the same transaction), so nothing here remembers a value the row
also holds.

Database outages: a progress event, a phase or a log line that cannot be written is
skipped (the next event brings the row up to date; log lines stay in the log file). A
final result that cannot be written stays with the recorder, which retries it, and is
copied to ``{checkpoints_dir}/{id}.result.json`` so that a service restarted before the
database came back records it at start (:func:`record_kept_result`) instead of training
the session again; once written, the copy is removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from training_engine.progress import ProgressEvent

from training_sessions import pending_results
from training_sessions.epoch_metrics import (
    BATCH_EVENT_METRICS,
    EPOCH_METRICS,
    STATUS_METRICS,
    EpochValues,
    epoch_values,
    reported_metrics,
)
from training_sessions.errors import InvalidTransitionError
from training_sessions.messages import LogLine
from training_sessions.observer import SessionObserver, notify
from training_sessions.pending_results import FinalColumns, PendingResult
from training_sessions.runners import Placement
from training_sessions.status_writer import StatusWriter
from training_sessions.store import NewEvent, SessionStore, utcnow
from training_sessions.types import SessionStatus

logger = logging.getLogger(__name__)

# Log lines kept in a session's event log; the rest are in its log file only.
MAX_LOG_EVENTS = 1000
LOG_EVENTS_CUT = f"more than {MAX_LOG_EVENTS} log lines: the rest are in the training's log only"


class OutageLog:
    """Says once when the database stops answering, and once when it is back."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._down_since: float | None = None

    def failed(self, exc: SQLAlchemyError) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.error("%s: database unavailable, retrying: %s", self._what, exc)

    def succeeded(self) -> None:
        if self._down_since is not None:
            logger.info(
                "%s: database available again after %.1fs",
                self._what,
                time.monotonic() - self._down_since,
            )
            self._down_since = None


def record_final(store: SessionStore, statuses: StatusWriter, result: PendingResult) -> None:
    """Epochs, then the move from running; an InvalidTransitionError is logged, not raised.

    Raises:
        SQLAlchemyError: the database did not take it (nothing of it is committed
            but epochs, which a retry writes again).
    """
    for epoch in result.epochs:
        store.upsert_epoch(result.training_id, epoch)
    try:
        statuses.move(
            result.training_id,
            SessionStatus.RUNNING,
            result.status,
            result.events,
            **result.columns(),
        )
    except InvalidTransitionError:
        # E.g. another process changed its row: refused, and said so.
        logger.exception("training %s: result %s not recorded", result.training_id, result.status)


def record_kept_result(store: SessionStore, statuses: StatusWriter, path: Path) -> PendingResult:
    """Write the result kept at ``path`` (it must exist), then remove the file."""
    kept = pending_results.load(path)
    if kept is None:
        raise FileNotFoundError(path)
    record_final(store, statuses, kept)
    path.unlink(missing_ok=True)
    return kept


class SessionRecorder:
    """Writes what one run reports; one per supervisor, used from its thread only.

    Args:
        training_id: the session.
        kept_file: where its final result is copied while the database refuses it.
    """

    def __init__(
        self,
        training_id: str,
        *,
        store: SessionStore,
        statuses: StatusWriter,
        observer: SessionObserver,
        kept_file: Path,
    ) -> None:
        self.training_id = training_id
        self._store = store
        self._statuses = statuses
        self._observer = observer
        self._kept_file = kept_file
        self.outage = OutageLog(f"training {training_id}")
        # The final result while the database refuses it (its copy: the kept file).
        self._unwritten: PendingResult | None = None

    def progress(self, event: ProgressEvent) -> None:
        """A batch, epoch or phase event of the engine."""
        try:
            if event.kind == "phase":
                self._store.update(
                    self.training_id, [("phase", {"phase": event.phase})], phase=event.phase
                )
            else:
                self._write_progress(event)
            self.outage.succeeded()
        except SQLAlchemyError as exc:
            self.outage.failed(exc)  # the next event brings the row up to date

    def _write_progress(self, event: ProgressEvent) -> None:
        counters = {
            "epoch": event.epoch,
            "total_epochs": event.total_epochs,
            "batch": event.batch,
            "total_batches": event.total_batches,
        }
        is_epoch = event.kind == "epoch"
        # A batch entry (``progress``) or an ``epoch`` entry, every field present (null when
        # not reported) so that an event's shape never depends on the batch; the store sets
        # the percent in its place (it never goes back).
        names = EPOCH_METRICS if is_epoch else BATCH_EVENT_METRICS
        metrics = {name: reported_metrics(event, names).get(name) for name in names}
        entry: NewEvent = (
            "epoch" if is_epoch else "progress",
            {**counters, "percent": event.percent, **metrics, "eta_seconds": event.eta_seconds},
        )
        self._store.record_progress(
            self.training_id,
            {**counters, "percent": event.percent, "eta_seconds": event.eta_seconds},
            reported_metrics(event, STATUS_METRICS),
            entry,
            epoch_values(event) if is_epoch else None,
        )
        if is_epoch:
            notify(
                self._observer,
                "on_epoch",
                self.training_id,
                event.epoch_seconds or 0.0,
                event.samples_per_second or 0.0,
            )

    def log(self, line: LogLine) -> None:
        """A log record of the run, for the event log (the first MAX_LOG_EVENTS only)."""
        data = {"level": line.level, "logger": line.logger, "message": line.message}
        cut = {"level": "INFO", "logger": __name__, "message": LOG_EVENTS_CUT}
        try:
            self._store.append_log(self.training_id, data, MAX_LOG_EVENTS, cut)
        except SQLAlchemyError as exc:
            self.outage.failed(exc)  # the line stays in the training's log file

    def placement(self, placement: Placement) -> bool:
        """Where the run executes; False when the database did not take it yet."""
        try:
            self._store.update(
                self.training_id, node=placement.node, node_address=placement.node_address
            )
        except SQLAlchemyError as exc:
            self.outage.failed(exc)
            return False
        return True

    def finish(
        self,
        status: SessionStatus,
        *,
        epochs: Sequence[EpochValues] = (),
        events: Sequence[NewEvent] = (),
        **values: Any,
    ) -> None:
        """Record the run's final (or interrupted) status; kept if the database refuses it."""
        if status.is_final():
            values["finished_at"] = utcnow()
        result = PendingResult(
            training_id=self.training_id,
            status=status,
            values=FinalColumns(**values),
            epochs=list(epochs),
            events=list(events),
        )
        try:
            record_final(self._store, self._statuses, result)
            self.outage.succeeded()
        except SQLAlchemyError as exc:
            self.outage.failed(exc)
            self._keep(result)

    def write_unwritten(self) -> bool:
        """Retry a result the database refused; True once nothing is left unwritten."""
        if self._unwritten is None:
            return True
        try:
            record_final(self._store, self._statuses, self._unwritten)
        except SQLAlchemyError as exc:
            self.outage.failed(exc)
            return False
        self.outage.succeeded()
        logger.info("training %s: kept result %s written", self.training_id, self._unwritten.status)
        self._unwritten = None
        self._kept_file.unlink(missing_ok=True)
        return True

    def _keep(self, result: PendingResult) -> None:
        self._unwritten = result
        logger.warning(
            "training %s ended %s but the database is unavailable: result kept in %s "
            "and retried until written",
            self.training_id,
            result.status,
            self._kept_file,
        )
        try:
            pending_results.keep(self._kept_file, result)
        except OSError:
            logger.exception("training %s: could not keep its result on disk", self.training_id)
