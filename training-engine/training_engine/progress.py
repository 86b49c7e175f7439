"""Structured progress events emitted by the training loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

ProgressKind = Literal["started", "batch", "epoch", "finished"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One snapshot of a run's progress.

    ``epoch`` is 1-based (the epoch in progress, or just finished for ``epoch``
    events); ``batch`` counts the batches finished in that epoch.
    """

    kind: ProgressKind
    epoch: int
    total_epochs: int
    batch: int
    total_batches: int
    train_loss: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None
    samples_per_second: float | None = None
    eta_seconds: float | None = None
    epoch_seconds: float | None = None

    @property
    def percent(self) -> float:
        """Share of all batches of the run done, 0..100."""
        total = self.total_epochs * self.total_batches
        if total <= 0:
            return 0.0
        done = (self.epoch - 1) * self.total_batches + self.batch
        return max(0.0, min(100.0, 100.0 * done / total))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["percent"] = self.percent
        return data


ProgressCallback = Callable[[ProgressEvent], None]
