"""Final results the database could not take, kept on disk until they are written.

When a run ends while the database is unreachable, its final status (and its epochs)
cannot be recorded. Its supervisor writes it to ``{checkpoints_dir}/{id}.result.json``,
beside the checkpoint, and from then on that file is the one place the result lives:
the supervisor retries from it every round until the database takes it, and a service
restarted before that records it at start instead of training the session again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from training_engine.atomic_files import write_atomically
from training_engine.errors import UnsafePathError
from training_engine.paths import path_inside

from training_sessions.epoch_metrics import EpochValues
from training_sessions.store import NewEvent
from training_sessions.types import SessionStatus

logger = logging.getLogger(__name__)


class FinalColumns(BaseModel):
    """The columns a final status sets with it; only those given are written."""

    model_config = ConfigDict(extra="forbid")

    finished_at: datetime | None = None
    error: str | None = None
    percent: float | None = None
    eta_seconds: float | None = None
    device: str | None = None
    model_path: str | None = None
    checkpoint_path: str | None = None
    test_metrics: dict[str, Any] | None = None
    baseline_metrics: dict[str, Any] | None = None
    stopped_early: bool | None = None


class PendingResult(BaseModel):
    """A session's final status, its columns, epochs and events, not yet in the database.

    Files written before this was a pydantic model (with ``datetime_keys``) load too.
    """

    training_id: str
    status: SessionStatus
    values: FinalColumns
    epochs: list[EpochValues] = []
    events: list[NewEvent] = []  # logged before the status event

    def columns(self) -> dict[str, Any]:
        """The columns to write: those the result set, a None included."""
        return self.values.model_dump(exclude_unset=True)


def pending_result_file(checkpoints_dir: Path, training_id: str) -> Path:
    """Where a session's unwritten result is kept: beside its checkpoint."""
    return checkpoints_dir / f"{training_id}.result.json"


def keep(path: Path, result: PendingResult) -> None:
    """Write ``result`` to ``path`` atomically (a crash leaves the old file or the new one)."""
    data = result.model_dump_json(exclude_unset=True).encode("utf-8")
    write_atomically(path, lambda handle: handle.write(data))


def load(path: Path) -> PendingResult | None:
    """The result kept at ``path``; None when there is none (or it links out of its folder)."""
    try:
        path = path_inside(path.parent, path.name, what="kept result")
    except UnsafePathError:
        logger.warning("ignoring %s: it is a link that leads out of its folder", path)
        return None
    if not path.is_file():
        return None
    return PendingResult.model_validate_json(path.read_bytes())
