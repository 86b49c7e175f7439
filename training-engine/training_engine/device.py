"""The one place that decides which torch device a run uses, and how devices are named.

Every device question goes to :func:`training_engine.device_probe.current_probe`, so
tests can stand in for CUDA and MPS machines.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import torch

from training_engine.device_probe import DeviceProbe, current_probe
from training_engine.errors import DeviceUnavailableError
from training_engine.strategy.values import DEVICE_NAME

logger = logging.getLogger(__name__)

_CUDA_INDEX = re.compile(r"^cuda:(\d+)$")
# Recurrent models stay off MPS under ``auto``: nn.LSTM/nn.GRU there are reported several
# times slower than the CPU (pytorch/pytorch#123148, open) and to produce NaNs in training
# (pytorch/pytorch#94691, open). ``device: mps`` still trains them there. docs/gpu.md.
RECURRENT_MODELS = frozenset({"lstm", "gru"})


def device_name(device: torch.device) -> str:
    """The name a strategy's ``device`` accepts for ``device``: cpu, cuda:N or mps.

    torch writes the one MPS device ``mps:0`` and a bare ``cuda`` without its index;
    every name the services report goes through here, so each is one they accept.
    """
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else 0}"
    return device.type


def resolve_device(spec: str | None = "auto", probe: DeviceProbe | None = None) -> torch.device:
    """Turn a device request into a ``torch.device``.

    Args:
        spec: ``auto`` (or None) picks CUDA, then MPS, then CPU; ``cpu``, ``cuda``,
            ``cuda:N`` and ``mps`` are checked against what this machine has.
        probe: the accelerators to ask (default: :func:`current_probe`).

    Returns:
        The device to train on. ``auto`` and ``cuda`` give the bare ``cuda`` (the first
        device the process sees): sessions pinned to it are the ones the supervisor may
        place on any card (``training_engine.gpu_placement``); ``cuda:N`` is that device.

    Raises:
        DeviceUnavailableError: an explicit device is not available, or the name is unknown.
    """
    probe = probe or current_probe()
    name = (spec or "auto").strip().lower()
    if name == "auto":
        if probe.cuda_available():
            return torch.device("cuda")
        if probe.mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not probe.mps_available():
            raise DeviceUnavailableError("device 'mps' requested but Apple MPS is not available")
        return torch.device("mps")
    if name == "cuda" or _CUDA_INDEX.match(name):
        if not probe.cuda_available():
            raise DeviceUnavailableError(f"device '{name}' requested but CUDA is not available")
        match = _CUDA_INDEX.match(name)
        if match:
            index = int(match.group(1))
            count = probe.cuda_device_count()
            if index >= count:
                raise DeviceUnavailableError(
                    f"device '{name}' requested but only {count} CUDA device(s) exist"
                )
        return torch.device(name)
    raise DeviceUnavailableError(
        f"unknown device '{spec}': expected auto, cpu, cuda, cuda:N or mps"
    )


def training_device(
    spec: str | None, model_type: str, probe: DeviceProbe | None = None
) -> torch.device:
    """The device a model of ``model_type`` trains on when ``spec`` is asked for.

    As :func:`resolve_device`, except that ``auto`` keeps LSTM and GRU models on the CPU
    of a machine whose accelerator is MPS (see ``RECURRENT_MODELS``).
    """
    device = resolve_device(spec, probe)
    auto = (spec or "auto").strip().lower() == "auto"
    if auto and device.type == "mps" and model_type in RECURRENT_MODELS:
        logger.info(
            "device auto: a %s model trains on the CPU, not MPS (recurrent layers on MPS are "
            "slow and unreliable; set device: mps to use it anyway)",
            model_type,
        )
        return torch.device("cpu")
    return device


def check_fallback_device(spec: Any) -> None:
    """Check a device asked of an accelerator host by a CPU fallback that will train on CPU.

    The names the host knows are accepted, and ``auto``, ``cuda`` and ``mps`` (an
    accelerator where there is one) fall back to the CPU; ``cuda:N`` names one device,
    which must exist here, exactly as the host checks it.

    Raises:
        DeviceUnavailableError: an unknown name, or an indexed device this machine lacks.
    """
    name = spec.strip().lower() if isinstance(spec, str) else None
    if name is None or not DEVICE_NAME.match(name):
        raise DeviceUnavailableError(
            f"unknown device {spec!r}: expected auto, cpu, cuda, cuda:N or mps"
        )
    if _CUDA_INDEX.match(name):
        resolve_device(name)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What this process can see of one accelerator: fixed facts, no live readings.

    ``device`` is the name a strategy uses for it (``cuda:0``, ``mps``). Live memory and
    utilisation come from NVML and from the workers (``training_host.gpu``): this
    process's own allocator says nothing of the sessions training elsewhere.
    """

    name: str
    type: str
    index: int | None
    device: str
    total_memory_bytes: int | None  # MPS: the working set Metal recommends
    uuid: str | None = None  # CUDA: normalised card UUID (matches NVML)
    pci_bus_id: str | None = None
    capability: tuple[int, int] | None = None  # CUDA compute capability


def describe_devices(probe: DeviceProbe | None = None) -> list[DeviceInfo]:
    """List the accelerators torch can see (empty on a CPU-only host)."""
    probe = probe or current_probe()
    if probe.cuda_available():
        devices = []
        for index in range(probe.cuda_device_count()):
            card = probe.cuda_card(index)
            devices.append(
                DeviceInfo(
                    name=card.name,
                    type="cuda",
                    index=index,
                    device=device_name(torch.device("cuda", index)),
                    total_memory_bytes=card.total_memory_bytes,
                    uuid=card.uuid,
                    pci_bus_id=card.pci_bus_id,
                    capability=card.capability,
                )
            )
        return devices
    if probe.mps_available():
        return [
            DeviceInfo(
                name="Apple MPS",
                type="mps",
                index=None,
                device=device_name(torch.device("mps")),
                total_memory_bytes=probe.mps_recommended_max_memory(),
            )
        ]
    return []
