"""Final results the database could not take, kept on disk until they are written.

When a worker finishes while the database is unreachable, its final status (and
its epochs) cannot be recorded. The supervisor keeps it in memory and retries
every round; it also writes it to ``{checkpoints_dir}/{id}.result.json``, beside
the checkpoint, so that a service restarted before the database came back
records the result at start instead of training the session again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from training_engine.atomic_files import write_atomically
from training_engine.errors import UnsafePathError
from training_engine.paths import path_inside

from training_sessions.store import EpochRecord, NewEvent
from training_sessions.types import SessionStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingResult:
    """A session's final status, its columns, epochs and events, not yet in the database."""

    training_id: str
    status: SessionStatus
    values: dict[str, Any]
    epochs: list[EpochRecord] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)  # logged before the status event

    def to_dict(self) -> dict[str, Any]:
        dates = {k: v.isoformat() for k, v in self.values.items() if isinstance(v, datetime)}
        return {
            "training_id": self.training_id,
            "status": self.status.value,
            "values": {**self.values, **dates},
            "datetime_keys": sorted(dates),
            "epochs": [asdict(epoch) for epoch in self.epochs],
            "events": [[kind, data] for kind, data in self.events],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingResult:
        values = dict(data["values"])
        for key in data.get("datetime_keys", []):
            values[key] = datetime.fromisoformat(values[key])
        return cls(
            training_id=data["training_id"],
            status=SessionStatus(data["status"]),
            values=values,
            epochs=[EpochRecord(**epoch) for epoch in data.get("epochs", [])],
            events=[(kind, event) for kind, event in data.get("events", [])],
        )


def pending_result_file(checkpoints_dir: Path, training_id: str) -> Path:
    """Where a session's unwritten result is kept: beside its checkpoint."""
    return checkpoints_dir / f"{training_id}.result.json"


def keep(path: Path, result: PendingResult) -> None:
    """Write ``result`` to ``path`` atomically (a crash leaves the old file or the new one)."""
    data = json.dumps(result.to_dict()).encode("utf-8")
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
    result: PendingResult = PendingResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return result
