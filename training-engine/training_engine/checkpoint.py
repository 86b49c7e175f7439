"""The one checkpoint format: a plain dict saved with ``torch.save``, written atomically.

A checkpoint holds everything a run needs to continue exactly where it stopped::

    format_version   int, CHECKPOINT_FORMAT_VERSION (added by save_checkpoint)
    fingerprint      str, hash of the training config and data shape (see config_fingerprint)
    model            state dict
    optimizer        state dict
    scheduler        state dict ({} without a scheduler)
    grad_scaler      state dict or None (fp16 on CUDA only)
    early_stopping   EarlyStopping.state_dict()
    grads            accumulated gradients (list of tensors/None) when stopped mid-accumulation
    rng              python, numpy, torch CPU and every visible CUDA generator's state;
                     ``device`` as well when the run trains on an accelerator: that
                     device's generator ({type, state}), MPS's included
    epoch            0-based epoch in progress
    batch            batches of that epoch already trained
    loss_sum         running train loss of that epoch (tensor)
    stopped_early    bool, early stopping ended the run after ``epoch``
    history          list of EpochMetrics as dicts
    best_val_loss    float

:class:`RunState` writes and reads every key but the first
(``state_dict``/``load_state_dict``); :func:`save_run`/:func:`resume_run` put it in a file
and back. :func:`read_position` reads where a checkpointed run stands without building it
(a service answering a resume request before a worker starts).

It is loaded with ``weights_only=True``: only tensors and plain Python values, so a
checkpoint file can never run code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training_engine.atomic_files import write_atomically
from training_engine.device_probe import DeviceProbe, current_probe
from training_engine.errors import CheckpointError
from training_engine.optim import EarlyStopping, LRSchedule
from training_engine.progress import EpochMetrics

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT_VERSION = 1


@dataclass(slots=True)
class RunState:
    """Everything a checkpoint holds: the objects being trained and where the loop is.

    ``epoch`` is the 0-based epoch in progress and ``batch`` the batches of it already
    trained; ``loss_sum`` is the sum of those batches' losses, kept on the device.
    """

    fingerprint: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler | None
    early_stopping: EarlyStopping
    loss_sum: torch.Tensor
    history: list[EpochMetrics] = field(default_factory=list)
    epoch: int = 0
    batch: int = 0
    stopped_early: bool = False

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's keys (all but ``format_version``), RNG states as of now."""
        # Gradients are only pending when stopped inside an accumulation group.
        grads = [p.grad for p in self.model.parameters()]
        return {
            "fingerprint": self.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "grad_scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "early_stopping": self.early_stopping.state_dict(),
            "grads": grads if any(g is not None for g in grads) else None,
            "rng": capture_rng_state(self.loss_sum.device),
            "epoch": self.epoch,
            "batch": self.batch,
            "loss_sum": self.loss_sum,
            "stopped_early": self.stopped_early,
            "history": [asdict(m) for m in self.history],
            "best_val_loss": self.early_stopping.best_loss,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore every object and the position from :meth:`state_dict`'s keys, the RNGs last.

        Raises:
            KeyError, TypeError, ValueError, RuntimeError: a key is missing or does not fit.
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["grad_scaler"] is not None:
            self.scaler.load_state_dict(state["grad_scaler"])
        self.early_stopping.load_state_dict(state["early_stopping"])
        if state["grads"] is not None:
            for param, grad in zip(self.model.parameters(), state["grads"], strict=True):
                param.grad = None if grad is None else grad.to(param.device)
        self.history[:] = [EpochMetrics(**row) for row in state["history"]]
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])
        self.loss_sum = state["loss_sum"].to(self.loss_sum.device)
        self.stopped_early = bool(state["stopped_early"])
        restore_rng_state(state["rng"], self.loss_sum.device)


def save_run(path: Path, run: RunState) -> None:
    """Checkpoint ``run`` to ``path`` (atomically, see :func:`save_checkpoint`)."""
    save_checkpoint(path, run.state_dict())


def resume_run(path: Path, run: RunState) -> None:
    """Load the checkpoint at ``path`` into ``run``.

    Raises:
        CheckpointError: the file is unreadable, of another run (its fingerprint differs
            from ``run.fingerprint``), or does not fit the run's objects.
    """
    state = load_checkpoint(path)
    if state.get("fingerprint") != run.fingerprint:
        raise CheckpointError(
            f"checkpoint {path} belongs to a different run: the strategy, training "
            "settings or data shape differ from this one"
        )
    try:
        run.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be restored: {exc}") from exc


@dataclass(frozen=True, slots=True)
class CheckpointPosition:
    """Where a checkpointed run stands: it continues in 0-based ``epoch`` after ``batch``
    of that epoch's batches (0: at its start). So ``epoch`` epochs are complete."""

    epoch: int
    batch: int


# Every key RunState.load_state_dict restores: a checkpoint lacking one cannot resume.
RUN_STATE_KEYS = (
    "fingerprint",
    "model",
    "optimizer",
    "scheduler",
    "grad_scaler",
    "early_stopping",
    "grads",
    "rng",
    "epoch",
    "batch",
    "loss_sum",
    "stopped_early",
    "history",
)


def read_position(path: Path) -> CheckpointPosition:
    """Read a run's checkpoint and say where the run stands.

    Checks what can be checked without the run itself: the file loads, holds every key a
    resume restores, and has model weights and a non-negative position. Whether it fits
    the run (its fingerprint) is checked when the run resumes.

    Raises:
        CheckpointError: the file is missing, unreadable, or lacks what a resume needs.
    """
    state = load_checkpoint(path)
    missing = [key for key in RUN_STATE_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    if not isinstance(state["model"], Mapping) or not state["model"]:
        raise CheckpointError(f"checkpoint {path} holds no model weights")
    epoch, batch = state["epoch"], state["batch"]
    if not _is_count(epoch) or not _is_count(batch):
        raise CheckpointError(
            f"checkpoint {path} has no valid position (epoch {epoch!r}, batch {batch!r})"
        )
    return CheckpointPosition(epoch=epoch, batch=batch)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: temp file in the same dir, fsync, rename.

    A crash at any moment leaves either the previous checkpoint or the new one, never
    a torn file.
    """
    payload = {"format_version": CHECKPOINT_FORMAT_VERSION, **state}
    write_atomically(Path(path), lambda handle: torch.save(payload, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors land on the CPU).

    Raises:
        CheckpointError: the file is missing, unreadable, corrupt, or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # The unpickler fails on foreign bytes with whatever its opcode handling meets
    # (KeyError for an unknown memo, IndexError, struct.error, ...): all mean "not readable".
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {exc}") from exc
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a training-engine checkpoint")
    version = state["format_version"]
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, "
            f"this engine reads version {CHECKPOINT_FORMAT_VERSION}"
        )
    return dict(state)


def config_fingerprint(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-safe description of a run (config and data shape)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def capture_rng_state(
    device: torch.device | None = None, probe: DeviceProbe | None = None
) -> dict[str, Any]:
    """Every random generator a training run on ``device`` draws from, weights_only-safe.

    The training device's own generator is kept under ``device`` (CUDA and MPS alike):
    it is restored onto whichever device of that type the run resumes on, so a
    checkpoint moves between machines with different numbers of GPUs. CPU runs write
    no ``device`` key (their checkpoints are exactly those of format version 1).
    """
    probe = probe or current_probe()
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": [
            probe.rng_state(torch.device("cuda", index))
            for index in range(probe.cuda_device_count() if probe.cuda_available() else 0)
        ],
    }
    if device is not None and device.type != "cpu":
        state["device"] = {"type": device.type, "state": probe.rng_state(device)}
    return state


def restore_rng_state(
    state: dict[str, Any], device: torch.device | None = None, probe: DeviceProbe | None = None
) -> None:
    """Put every generator back to the state :func:`capture_rng_state` recorded.

    The training device's generator comes from ``state["device"]`` when the checkpoint
    was written on a device of the same type; an older checkpoint's CUDA states are
    restored onto as many devices as both machines have.
    """
    probe = probe or current_probe()
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    saved = state.get("device")
    if device is not None and saved is not None and saved["type"] == device.type:
        probe.set_rng_state(device, saved["state"])
    elif saved is not None and device is not None and device.type != "cpu":
        logger.warning(
            "checkpoint written on %s resumes on %s: dropout draws differ from here on",
            saved["type"],
            device,
        )
    elif state["cuda"] and probe.cuda_available():
        # Written before the ``device`` slot: one state per GPU the saving process saw.
        for index, cuda_state in enumerate(state["cuda"][: probe.cuda_device_count()]):
            probe.set_rng_state(torch.device("cuda", index), cuda_state)
