"""What a run computes in: mixed precision that is what it says, TF32, deterministic kernels.

``mixed_precision`` (off, auto, bf16, fp16) is turned into what actually runs on the
device (:func:`choose_precision`); where that differs from the request the reason is
logged. :func:`device_modes` sets torch's process-wide switches for one run and puts
them back afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from training_engine.device_probe import DeviceProbe
from training_engine.gpu_placement import CUBLAS_WORKSPACE_CONFIG

logger = logging.getLogger(__name__)

# bf16 runs natively from Ampere (compute capability 8.0) on; older cards emulate it slowly.
NATIVE_BF16_CAPABILITY = (8, 0)
# TF32 tensor cores exist from Ampere on as well.
TF32_CAPABILITY = (8, 0)


@dataclass(frozen=True, slots=True)
class Precision:
    """What a run computes in: autocast to ``dtype`` (None: fp32), with a scaler for fp16."""

    dtype: torch.dtype | None
    note: str | None = None  # why it differs from what was asked, for the run's log

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range."""
        return self.dtype == torch.float16


def choose_precision(mode: str, device: torch.device, probe: DeviceProbe) -> Precision:
    """The precision ``mixed_precision: mode`` trains in on ``device``.

    - CUDA: ``auto`` is bf16 on cards that run it natively (compute capability >= 8.0),
      else fp16 with a gradient scaler; ``bf16`` asked of an older card runs fp16.
    - MPS: opt-in; ``auto`` trains in fp32, ``fp16``/``bf16`` use MPS autocast (bf16
      needs macOS 14, else fp32).
    - CPU: always fp32.
    """
    if mode == "off":
        return Precision(None)
    if device.type == "cuda":
        card = probe.cuda_card(device.index or 0)
        native_bf16 = card.capability >= NATIVE_BF16_CAPABILITY
        if mode == "fp16" or (mode == "auto" and not native_bf16):
            return Precision(torch.float16)
        if native_bf16:
            return Precision(torch.bfloat16)
        major, minor = card.capability
        return Precision(
            torch.float16,
            f"mixed_precision bf16: {card.name} (compute capability {major}.{minor}) only "
            "emulates bf16, so training runs in fp16 with a gradient scaler",
        )
    if device.type == "mps":
        if mode == "auto":
            return Precision(
                None,
                "mixed_precision auto on MPS trains in fp32; set fp16 or bf16 to use MPS autocast",
            )
        if mode == "bf16" and not probe.mps_supports_bf16():
            return Precision(None, "mixed_precision bf16 on MPS needs macOS 14: training in fp32")
        return Precision(torch.bfloat16 if mode == "bf16" else torch.float16)
    if mode == "auto":
        return Precision(None)
    return Precision(None, f"mixed_precision {mode} has no effect on the CPU: training in fp32")


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    """Autocast to ``dtype`` (a :class:`Precision`'s) on ``device``; nothing for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def process_switches() -> tuple[bool, bool, bool, bool, bool, str]:
    """torch's process-wide switches :func:`device_modes` sets, in the order it restores them."""
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.get_float32_matmul_precision(),
    )


@contextlib.contextmanager
def device_modes(deterministic: bool, device: torch.device, probe: DeviceProbe) -> Iterator[None]:
    """torch's process-wide switches for one run, restored afterwards.

    ``deterministic``: deterministic kernels or an error naming the op that has none
    (``warn_only=False``), cuDNN deterministic without autotuning, no TF32, and
    ``CUBLAS_WORKSPACE_CONFIG`` where no cuBLAS handle exists yet (the session worker
    sets it before CUDA starts). Otherwise TF32 for fp32 matmuls and convolutions on
    cards that have it.
    """
    previous = process_switches()
    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    elif device.type == "cuda" and probe.cuda_card(device.index or 0).capability >= TF32_CAPABILITY:
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        algorithms, warn_only, cudnn_deterministic, benchmark, cudnn_tf32, matmul = previous
        torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
        torch.backends.cudnn.deterministic = cudnn_deterministic
        torch.backends.cudnn.benchmark = benchmark
        torch.backends.cudnn.allow_tf32 = cudnn_tf32
        torch.set_float32_matmul_precision(matmul)
