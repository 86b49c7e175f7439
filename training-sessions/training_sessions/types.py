"""The contract of the session runtime shared by the host service and the proxy's fallback.

A *session* is one training run requested over HTTP: it is queued, runs through
:func:`training_engine.trainer.train` wherever its runner puts it (a worker process
today), reports progress into a database, can be stopped, and survives a restart of
the process that owns it (it is marked ``interrupted`` and resumed from its last
checkpoint). The host service and the backend's CPU fallback both use one
:class:`~training_sessions.service.SessionService`; neither has a runner of its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from training_engine.progress import RunPhase

if TYPE_CHECKING:
    from pydantic import TypeAdapter

from training_engine.ceilings import Ceilings


class SessionStatus(StrEnum):
    """Where a session is in its life; the values are what clients see.

    The moves allowed (:data:`TRANSITIONS`)::

        (new) -> queued
        queued      -> running | cancelled | interrupted | failed (cannot be launched)
        running     -> completed | failed | cancelled | interrupted
        interrupted -> queued (resumed) | cancelled (stopped while waiting)
        failed, cancelled -> queued (resumed by a client from the checkpoint)
        completed: no way out

    Two questions, answered apart:

    - *final for now* (:meth:`is_final`): completed, failed and cancelled. The run is
      over (``finished_at`` set, the event stream ends) and nothing moves the session
      by itself. Failed and cancelled stay so until a client resumes them.
    - *resumable* (:meth:`is_resumable`): failed, cancelled and interrupted, from their
      checkpoint. Completed is the one status that is final and never resumable.

    Interrupted is not final: the service stopped under the run, and the next start
    (or a client) resumes it.
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    def is_final(self) -> bool:
        """True for completed, failed and cancelled: the run is over, for now."""
        return self in FINAL_STATUSES

    def is_resumable(self) -> bool:
        """True for failed, cancelled and interrupted: a client may resume them."""
        return self in RESUMABLE_STATUSES

    def can_move_to(self, new: SessionStatus) -> bool:
        return new in TRANSITIONS[self]


_PHASE_DOC = """What an active session is doing; null once it is final or interrupted.

``queued`` and ``starting`` are the runtime's; the others are reported by the
engine (``training_engine.progress.RunPhase``) as the worker reaches them.
"""
if TYPE_CHECKING:
    SessionPhase = Literal["queued", "starting"] | RunPhase
else:
    # At run time one enum built from the engine's phases: one named schema in the
    # OpenAPI documents, and its values compare equal to the strings stored.
    SessionPhase = StrEnum(
        "SessionPhase",
        {phase.upper(): phase for phase in ("queued", "starting", *get_args(RunPhase))},
    )
    SessionPhase.__doc__ = _PHASE_DOC


TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.QUEUED: frozenset(
        {
            SessionStatus.RUNNING,
            SessionStatus.CANCELLED,
            SessionStatus.INTERRUPTED,
            SessionStatus.FAILED,
        }
    ),
    SessionStatus.RUNNING: frozenset(
        {
            SessionStatus.COMPLETED,
            SessionStatus.FAILED,
            SessionStatus.CANCELLED,
            SessionStatus.INTERRUPTED,
        }
    ),
    SessionStatus.INTERRUPTED: frozenset({SessionStatus.QUEUED, SessionStatus.CANCELLED}),
    # Final and never resumable.
    SessionStatus.COMPLETED: frozenset(),
    # Final until a client resumes them (SessionService.resume, with a checkpoint).
    SessionStatus.FAILED: frozenset({SessionStatus.QUEUED}),
    SessionStatus.CANCELLED: frozenset({SessionStatus.QUEUED}),
}
SESSION_STATUSES: tuple[SessionStatus, ...] = tuple(SessionStatus)
ACTIVE_STATUSES: frozenset[SessionStatus] = frozenset({SessionStatus.QUEUED, SessionStatus.RUNNING})
# Final for now: the run is over and nothing moves the session by itself.
FINAL_STATUSES: frozenset[SessionStatus] = frozenset(
    {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
)
# A client may resume these from their checkpoint; resume moves them to queued.
RESUMABLE_STATUSES: frozenset[SessionStatus] = frozenset(
    {SessionStatus.FAILED, SessionStatus.CANCELLED, SessionStatus.INTERRUPTED}
)


# A session started through KTRDR's routes: a caller those routes admit without the
# bearer token sees and acts on these only (the host's ``ktrdr_clients``).
KTRDR_ROUTES = "ktrdr"


# How the local runner starts a worker process (training_sessions.runners.local).
WorkerStart = Literal["auto", "spawn", "forkserver"]


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """Where a session runtime keeps things and how much it runs at once.

    Each service maps its own pydantic settings onto this plain object.
    """

    database_url: str
    data_dir: Path
    models_dir: Path
    strategies_dir: Path
    checkpoints_dir: Path
    default_strategy: str = "momentum_mlp"
    default_device: str = "auto"
    max_concurrent_jobs: int = 1
    max_queue_size: int = 16
    stop_grace_seconds: float = 30.0
    resume_interrupted: bool = True
    # Each worker writes its log to <log_dir>/<training_id>.log; None: no log files.
    log_dir: Path | None = None
    # Torch threads per session's worker; None: cores / max_concurrent_jobs (local runner).
    cpus_per_session: float | None = None
    # Sessions one warm worker process runs before it is replaced (1: a process per session).
    worker_max_sessions: int = 20
    # Prepared data each warm worker keeps for the next sessions over the same inputs.
    data_cache_bytes: int = 512 * 1024 * 1024
    # How the local runner starts worker processes: "auto" forks them from a fork server
    # that imported torch and the engine once (Linux), else spawns a fresh interpreter.
    worker_start: WorkerStart = "auto"
    # The largest sizes a session may ask for (checked when it is submitted).
    ceilings: Ceilings = field(default_factory=Ceilings)


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    """What a client asked to train, before any defaults are filled in.

    ``strategy`` is either the name of a file in the strategies directory
    (without ``.yaml``) or an inline strategy mapping; None means the runtime's
    default strategy. ``config`` overrides ``model.training`` settings.
    ``started_through`` names the routes that started it when those routes see only
    their own trainings (:data:`KTRDR_ROUTES`); None for the service's own API.
    """

    strategy: str | dict[str, Any] | None = None
    symbols: tuple[str, ...] | None = None
    timeframes: tuple[str, ...] | None = None
    start_date: str | None = None
    end_date: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    started_through: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with the session (``training_sessions.request``)."""
        stored: dict[str, Any] = _request_form().dump_python(self, mode="json")
        # Only when set: fingerprints of the requests stored before it existed stay the same.
        if stored.get("started_through") is None:
            stored.pop("started_through", None)
        return stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRequest:
        """A request read back from its stored JSON form."""
        return _request_form().validate_python(data)

    def fingerprint(self) -> str:
        """A stable hash: the same id with the same fingerprint is the same training."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionProgress:
    epoch: int = 0
    total_epochs: int = 0
    batch: int = 0
    total_batches: int = 0
    percent: float = 0.0
    eta_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session as clients see it; its size is bounded however long the run."""

    training_id: str
    status: SessionStatus
    request: dict[str, Any]
    progress: SessionProgress
    metrics: dict[str, float | None]
    device: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    model_path: str | None
    checkpoint_path: str | None
    resume_count: int = 0
    phase: SessionPhase | None = None
    stopped_early: bool = False
    best_epoch: int | None = None
    # Launches so far (0 while never launched); where the last one ran (the runner says).
    attempt: int = 0
    node: str | None = None
    node_address: str | None = None
    # The id of the event stream's ``end`` while final (its own, after every event's).
    end_event_id: int | None = None
    # The strategy as resolved at submit (the default one's name too) and its lists.
    strategy_name: str | None = None
    resolved_symbols: list[str] | None = None
    resolved_timeframes: list[str] | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def started_through(self) -> str | None:
        """The routes that started it when those see only their own (``KTRDR_ROUTES``)."""
        value = self.request.get("started_through")
        return value if isinstance(value, str) else None

    def request_summary(self) -> dict[str, Any]:
        """Strategy name, symbols and timeframes as trained, for lists and pages.

        The resolved strategy's (the default one's when the request named none); a row
        stored before they were kept shows what its request said.
        """
        strategy = self.strategy_name or self.request.get("strategy")
        if isinstance(strategy, dict):
            strategy = str(strategy.get("name") or "inline strategy")
        return {
            "strategy": strategy,
            "symbols": self.resolved_symbols or self.request.get("symbols"),
            "timeframes": self.resolved_timeframes or self.request.get("timeframes"),
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """What a list of sessions is narrowed to; None: no condition on it."""

    status: str | None = None
    started_through: str | None = None
    strategy: str | None = None  # the strategy's name
    symbol: str | None = None  # one of its symbols
    timeframe: str | None = None
    tag: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


EventKind = Literal["status", "phase", "progress", "epoch", "log", "result"]


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One entry of a session's event log; ``id`` numbers the session's events from 1 and
    only grows (clients resume after it)."""

    id: int
    kind: EventKind
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionPerformance:
    """Per-epoch history and, once completed, test metrics against the majority baseline."""

    training_id: str
    status: SessionStatus
    history: list[dict[str, float | int]]
    test_metrics: dict[str, Any] | None
    baseline_metrics: dict[str, Any] | None
    evaluation: dict[str, Any] | None = None  # from the model's metadata (see the contract)


@cache
def _request_form() -> TypeAdapter[TrainingRequest]:
    """The one serializer of a request (pydantic is imported on first use)."""
    from pydantic import TypeAdapter

    return TypeAdapter(TrainingRequest)
