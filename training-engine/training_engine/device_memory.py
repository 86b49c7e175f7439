"""Device memory known before it runs out: the estimate of a run, the check, what it holds.

:func:`estimate_memory` adds up what a run keeps on its device: the feature rows (with
end indices, labels and weights), the model with its gradients, optimizer state and
the best epoch's copy, and the activations of the larger of one training batch and one
inference chunk. Activations are an upper bound (every layer's output kept, fp32, twice
over for their gradients). :func:`place_rows` compares that with what the device has
free: the rows go to the device, or (CUDA) stay on the host and are copied per batch,
or the run is refused with the numbers.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from training_engine.dataset import PreparedDataset
from training_engine.device import device_name
from training_engine.device_probe import DeviceProbe
from training_engine.errors import DeviceOutOfMemoryError
from training_engine.progress import DeviceMemory
from training_engine.strategy import ModelConfig, TrainingSettings

logger = logging.getLogger(__name__)

FLOAT_BYTES = 4
# State tensors each optimizer keeps per parameter (Adam: two moments; SGD: momentum).
OPTIMIZER_SLOTS = {"adam": 2, "adamw": 2, "sgd": 1, "muon": 2}
# Allocator fragmentation, cuBLAS/cuDNN workspaces and the autocast weight copies.
ALLOCATOR_SLACK = 1.25
# Inference holds no activations for a backward pass: a chunk may be this many batches.
INFERENCE_BATCHES_PER_CHUNK = 4
LARGEST_INFERENCE_CHUNK = 4096
_GIB = 1024**3
_MIB = 1024**2

RowsPlacement = Literal["device", "host"]


def inference_chunk(batch_size: int) -> int:
    """Windows per validation/test forward pass: tied to the batch size that fits.

    Several batches at once (no activations are kept for a backward pass), at most
    4,096 windows unless the batch itself is larger.
    """
    return max(batch_size, min(LARGEST_INFERENCE_CHUNK, INFERENCE_BATCHES_PER_CHUNK * batch_size))


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes a run keeps on its device, by part."""

    rows_bytes: int  # feature rows, end indices, labels, weights, the epoch's order
    model_bytes: int  # parameters, gradients, optimizer state, best epoch's weights
    batch_bytes: int  # activations of one training batch, forward and backward
    inference_bytes: int  # activations of one validation/test chunk
    batch_size: int
    inference_chunk: int

    def needed(self, rows_on_device: bool = True) -> int:
        """The peak, with slack for the allocator: batch and inference never overlap."""
        working = self.model_bytes + max(self.batch_bytes, self.inference_bytes)
        return math.ceil(ALLOCATOR_SLACK * (working + (self.rows_bytes if rows_on_device else 0)))

    def describe(self) -> str:
        return (
            f"rows {_size(self.rows_bytes)}, model and optimizer {_size(self.model_bytes)}, "
            f"a batch of {self.batch_size} {_size(self.batch_bytes)}, an inference chunk of "
            f"{self.inference_chunk} {_size(self.inference_bytes)}, x{ALLOCATOR_SLACK} slack"
        )


def estimate_memory(
    data: PreparedDataset, model: nn.Module, config: ModelConfig, settings: TrainingSettings
) -> MemoryEstimate:
    """What training ``model`` on ``data`` with ``settings`` keeps on its device."""
    n_train, n_val, n_test = len(data.train_ends), len(data.val_ends), len(data.test_ends)
    labels = np.dtype(np.float32 if data.is_regression else np.int64).itemsize
    rows = (
        data.rows.shape[0] * data.rows.shape[1] * FLOAT_BYTES
        + (n_train + n_val + n_test) * (8 + labels)
        + (n_train * FLOAT_BYTES if data.w_train is not None else 0)
        + n_train * 8  # the epoch's permutation
    )
    parameters = sum(p.numel() for p in model.parameters()) * FLOAT_BYTES
    copies = 2 + OPTIMIZER_SLOTS.get(settings.optimizer, 2) + int(settings.early_stopping.enabled)
    per_sample = _activations_per_sample(config, data.lookback, data.n_features)
    chunk = inference_chunk(settings.batch_size)
    return MemoryEstimate(
        rows_bytes=rows,
        model_bytes=parameters * copies,
        batch_bytes=settings.batch_size * per_sample * FLOAT_BYTES * 2,
        inference_bytes=chunk * per_sample * FLOAT_BYTES,
        batch_size=settings.batch_size,
        inference_chunk=chunk,
    )


def _activations_per_sample(config: ModelConfig, lookback: int, n_features: int) -> int:
    """Floats one sample's forward pass produces, every layer's output counted."""
    window = lookback * n_features
    hidden = config.hidden_layers
    if config.type in ("lstm", "gru"):
        gates = 4 if config.type == "lstm" else 3
        # Per step and layer: the gates plus hidden (and cell) state kept for backward.
        return window + config.num_layers * lookback * hidden[0] * (gates + 2) + hidden[0]
    if config.type == "transformer":
        heads = config.num_heads
        width = max(heads, -(-hidden[0] // heads) * heads)
        feedforward = hidden[1] if len(hidden) > 1 else 2 * width
        # Per layer: q, k, v, attention output, two norms, two residuals (8 x width per
        # step), the feed-forward pair, and the attention weights with their dropout mask.
        per_layer = lookback * (8 * width + 2 * feedforward) + 2 * heads * lookback * lookback
        return window + 2 * lookback * width + config.num_layers * per_layer + width
    # MLP: each hidden layer's linear output, activation and dropout mask.
    return window + 3 * sum(hidden)


def place_rows(
    estimate: MemoryEstimate,
    device: torch.device,
    available: tuple[int, int] | None,
    memory_fraction: float | None = None,
) -> RowsPlacement:
    """Where the feature rows live: on ``device`` when the whole run fits its memory.

    Args:
        estimate: what the run needs (:func:`estimate_memory`).
        device: the training device.
        available: free and total bytes of the device (None: unknown, e.g. the CPU).
        memory_fraction: the share of the device this run may use (None: all that is free).

    Returns:
        ``device``, or ``host`` on CUDA when only the rows do not fit: they stay in host
        memory and each batch's windows are copied over.

    Raises:
        DeviceOutOfMemoryError: the run does not fit even without the rows (or on MPS,
            whose memory is the host's).
    """
    if available is None:
        return "device"
    free, total = available
    budget = free if memory_fraction is None else min(free, int(memory_fraction * total))
    if estimate.needed() <= budget:
        return "device"
    share = (
        f" under memory_fraction {memory_fraction:g} of {_size(total)}" if memory_fraction else ""
    )
    if device.type == "cuda" and estimate.needed(rows_on_device=False) <= budget:
        logger.warning(
            "the feature rows (%s) do not fit on %s beside the run (%s free%s): they stay in "
            "host memory and each batch is copied over, which is slower",
            _size(estimate.rows_bytes),
            device_name(device),
            _size(budget),
            share,
        )
        return "host"
    raise DeviceOutOfMemoryError(
        f"this run needs about {_size(estimate.needed())} on {device_name(device)} "
        f"({estimate.describe()}) but {_size(budget)} is free{share}: lower batch_size, "
        "use a shorter date range or a smaller model, stop other sessions on this device, "
        "or train with device: cpu"
    )


@contextlib.contextmanager
def memory_cap(device: torch.device, fraction: float | None, probe: DeviceProbe) -> Iterator[None]:
    """Cap this process's allocations on ``device`` at ``fraction`` of it for one run.

    The previous cap comes back afterwards on CUDA. MPS cannot say what its cap was, so
    it keeps the run's: a session worker trains one run per process.
    """
    if fraction is None or device.type == "cpu":
        yield
        return
    previous = probe.memory_fraction(device)
    probe.set_memory_fraction(device, fraction)
    try:
        yield
    finally:
        if previous is not None:
            probe.set_memory_fraction(device, previous)


def memory_reader(
    device: torch.device, probe: DeviceProbe
) -> Callable[[], DeviceMemory | None] | None:
    """Reads what this process holds on ``device`` for progress events; None on the CPU.

    Reading torch's allocator counters does not wait for the device.
    """
    if device.type == "cpu":
        return None
    name = device_name(device)
    uuid = probe.cuda_card(device.index or 0).uuid if device.type == "cuda" else None

    def read() -> DeviceMemory | None:
        held = probe.allocator_memory(device)
        if held is None:
            return None
        return DeviceMemory(
            device=name,
            uuid=uuid,
            allocated_bytes=held.allocated_bytes,
            peak_allocated_bytes=held.peak_allocated_bytes,
            reserved_bytes=held.reserved_bytes,
        )

    return read


def _size(n_bytes: int) -> str:
    if n_bytes >= _GIB:
        return f"{n_bytes / _GIB:.2f} GiB"
    return f"{n_bytes / _MIB:.1f} MiB"
