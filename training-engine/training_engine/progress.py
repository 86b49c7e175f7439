"""Structured progress events emitted by the training loop, and the emitter that sends them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

if TYPE_CHECKING:
    import torch

ProgressKind = Literal["phase", "started", "batch", "epoch", "finished"]
# What a run is doing; a ``phase`` event announces each one as it begins.
RunPhase = Literal["loading_data", "training", "evaluating", "saving"]
RUN_PHASES: tuple[RunPhase, ...] = get_args(RunPhase)


@dataclass(frozen=True, slots=True)
class EpochMetrics:
    """One row of a run's history: the epoch's number and its :data:`EPOCH_METRICS`."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    epoch_seconds: float
    samples_per_second: float


# What an epoch reports beside its number, in this order: its history row, its ``epoch``
# event and whatever records epochs (the sessions' store) name these fields alike.
EPOCH_METRICS: tuple[str, ...] = tuple(f.name for f in fields(EpochMetrics) if f.name != "epoch")


@dataclass(frozen=True, slots=True)
class DeviceMemory:
    """What a run holds on its accelerator, as its own process's allocator counts it.

    Sent by the worker in progress events: only it can see its allocations (NVML sees a
    card's total use, MPS has no device-wide reading at all). ``device`` is the name in
    the worker, where ``CUDA_VISIBLE_DEVICES`` may show one card as ``cuda:0``; ``uuid``
    names the CUDA card whatever its ordinal (NVML's UUID without ``GPU-``).
    """

    device: str
    uuid: str | None
    allocated_bytes: int
    peak_allocated_bytes: int | None  # None where the backend keeps no peak (MPS)
    reserved_bytes: int | None


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One snapshot of a run's progress.

    ``epoch`` is 1-based (the epoch in progress, or just finished for ``epoch``
    events); ``batch`` counts the batches finished in that epoch. A ``phase`` event
    carries only ``phase`` (its counters are 0). ``eta_seconds`` of a batch event is
    estimated from the batches done so far, of an epoch event from the epochs done.
    ``device_memory``: the run's allocations on its accelerator (None on the CPU).
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
    phase: RunPhase | None = None
    device_memory: DeviceMemory | None = None

    @property
    def percent(self) -> float:
        """Share of all batches of the run done, 0..100."""
        total = self.total_epochs * self.total_batches
        if total <= 0:
            return 0.0
        done = (self.epoch - 1) * self.total_batches + self.batch
        return max(0.0, min(100.0, 100.0 * done / total))


ProgressCallback = Callable[[ProgressEvent], None]


def report_phase(callback: ProgressCallback | None, phase: RunPhase) -> None:
    """Send a ``phase`` event (nothing without a callback)."""
    if callback is not None:
        callback(ProgressEvent("phase", 0, 0, 0, 0, phase=phase))


class ProgressEmitter:
    """Builds the four events of a run for one callback; does nothing without one.

    Epochs are 1-based here, as in the events. ``batch`` events are thinned to one per
    ``batch_event_interval`` seconds, except each epoch's last batch: reading a batch's
    loss waits for the device, so a listener that wants only a few updates a second
    should not make every batch wait.
    """

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        total_epochs: int,
        total_batches: int,
        batch_event_interval: float = 0.0,
        device_memory: Callable[[], DeviceMemory | None] | None = None,
    ) -> None:
        self._callback = callback
        self._device_memory = device_memory
        self._total_epochs = total_epochs
        self._total_batches = total_batches
        self._batch_event_interval = batch_event_interval
        self._last_batch_event = -math.inf
        self._started = time.perf_counter()
        self._first_epoch = 1
        self._first_batch = 0

    def started(self, epoch: int, batch: int) -> None:
        """The run starts (or resumes) at ``batch`` batches into ``epoch``."""
        self._started, self._first_epoch, self._first_batch = time.perf_counter(), epoch, batch
        self._send("started", epoch, batch)

    def batch(
        self, epoch: int, batch: int, loss: torch.Tensor, learning_rate: float
    ) -> float | None:
        """Batch ``batch`` of ``epoch`` is trained; ``loss`` is read only if an event is sent.

        Returns:
            The loss read for the event, None when no event was sent.
        """
        if self._callback is None:
            return None
        now = time.perf_counter()
        if (
            batch < self._total_batches
            and now - self._last_batch_event < self._batch_event_interval
        ):
            return None
        self._last_batch_event = now
        value = float(loss.item())
        self._send(
            "batch",
            epoch,
            batch,
            train_loss=value,
            learning_rate=learning_rate,
            eta_seconds=self._batch_eta(epoch, batch, now),
        )
        return value

    def epoch(self, metrics: EpochMetrics) -> None:
        """Epoch ``metrics.epoch`` is trained and validated; the ETA assumes alike epochs."""
        if self._callback is None:
            return
        epochs_done = metrics.epoch - self._first_epoch + 1
        elapsed = time.perf_counter() - self._started
        self._send(
            "epoch",
            metrics.epoch,
            self._total_batches,
            eta_seconds=elapsed / max(1, epochs_done) * (self._total_epochs - metrics.epoch),
            **{name: getattr(metrics, name) for name in EPOCH_METRICS},
        )

    def finished(
        self, epoch: int, batch: int, last: EpochMetrics | None, learning_rate: float
    ) -> None:
        """The run ends at ``batch`` batches into ``epoch``; ``last`` is its last epoch's row."""
        self._send(
            "finished",
            epoch,
            batch,
            train_loss=last.train_loss if last else None,
            val_loss=last.val_loss if last else None,
            val_accuracy=last.val_accuracy if last else None,
            learning_rate=learning_rate,
        )

    def _batch_eta(self, epoch: int, batch: int, now: float) -> float | None:
        """Seconds left at the pace of the batches trained since the run (re)started."""
        done = (epoch - self._first_epoch) * self._total_batches + batch - self._first_batch
        if done <= 0:
            return None
        left = (self._total_epochs - epoch) * self._total_batches + self._total_batches - batch
        return (now - self._started) / done * left

    def _send(self, kind: ProgressKind, epoch: int, batch: int, **metrics: float | None) -> None:
        if self._callback is not None:
            memory = self._device_memory() if self._device_memory is not None else None
            event = ProgressEvent(
                kind, epoch, self._total_epochs, batch, self._total_batches, device_memory=memory
            )
            # Only metric fields are passed here (floats); ``phase`` events come from report_phase.
            self._callback(replace(event, **cast(dict[str, Any], metrics)))
