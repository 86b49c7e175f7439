"""The one place that decides which torch device a run uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from training_engine.errors import DeviceUnavailableError
from training_engine.strategy.values import DEVICE_NAME

_CUDA_INDEX = re.compile(r"^cuda:(\d+)$")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str | None = "auto") -> torch.device:
    """Turn a device request into a ``torch.device``.

    Args:
        spec: ``auto`` (or None) picks CUDA, then MPS, then CPU; ``cpu``, ``cuda``,
            ``cuda:N`` and ``mps`` are checked against what this machine has.

    Returns:
        The device to train on.

    Raises:
        DeviceUnavailableError: an explicit device is not available, or the name is unknown.
    """
    name = (spec or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise DeviceUnavailableError("device 'mps' requested but Apple MPS is not available")
        return torch.device("mps")
    if name == "cuda" or _CUDA_INDEX.match(name):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"device '{name}' requested but CUDA is not available")
        match = _CUDA_INDEX.match(name)
        if match:
            index = int(match.group(1))
            count = torch.cuda.device_count()
            if index >= count:
                raise DeviceUnavailableError(
                    f"device '{name}' requested but only {count} CUDA device(s) exist"
                )
        return torch.device(name)
    raise DeviceUnavailableError(
        f"unknown device '{spec}': expected auto, cpu, cuda, cuda:N or mps"
    )


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
    """What a service reports about one accelerator."""

    name: str
    type: str
    index: int | None
    total_memory_bytes: int | None
    allocated_memory_bytes: int | None
    reserved_memory_bytes: int | None


def describe_devices() -> list[DeviceInfo]:
    """List the accelerators torch can see (empty on a CPU-only host)."""
    devices: list[DeviceInfo] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                DeviceInfo(
                    name=props.name,
                    type="cuda",
                    index=index,
                    total_memory_bytes=int(props.total_memory),
                    allocated_memory_bytes=int(torch.cuda.memory_allocated(index)),
                    reserved_memory_bytes=int(torch.cuda.memory_reserved(index)),
                )
            )
    elif _mps_available():
        mps = getattr(torch, "mps", None)
        allocated = int(mps.current_allocated_memory()) if mps is not None else None
        reserved = int(mps.driver_allocated_memory()) if mps is not None else None
        devices.append(
            DeviceInfo(
                name="Apple MPS",
                type="mps",
                index=0,
                total_memory_bytes=None,
                allocated_memory_bytes=allocated,
                reserved_memory_bytes=reserved,
            )
        )
    return devices
