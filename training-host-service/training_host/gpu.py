"""What the host's accelerators look like, and advice for training on them.

Memory figures come from the engine (``describe_devices``); utilisation and
temperature from NVML when ``pynvml`` is installed and a driver answers.
"""

from __future__ import annotations

import logging
from typing import Any

from training_engine.device import DeviceInfo, describe_devices

logger = logging.getLogger(__name__)

_GIB = 1024**3


def _nvml_readings(index: int) -> dict[str, float]:
    """Utilisation (%) and temperature (C) of CUDA device ``index``; empty without NVML."""
    try:
        import pynvml  # optional: absent on most CPU-only hosts
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            utilisation = pynvml.nvmlDeviceGetUtilizationRates(handle)
            temperature = pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
            return {
                "utilization_percent": float(utilisation.gpu),
                "temperature_celsius": float(temperature),
            }
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as exc:
        # A driver that does not answer is a reading we omit, not a failed request.
        logger.debug("NVML unavailable: %s", exc)
        return {}


def _device_body(device: DeviceInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": device.name,
        "type": device.type,
        "index": device.index,
        "total_memory_bytes": device.total_memory_bytes,
        "allocated_memory_bytes": device.allocated_memory_bytes,
        "reserved_memory_bytes": device.reserved_memory_bytes,
    }
    if device.type == "cuda" and device.index is not None:
        body.update(_nvml_readings(device.index))
    return body


def gpu_status() -> dict[str, Any]:
    """Every accelerator torch sees; ``available`` is False on a CPU-only host."""
    devices = describe_devices()
    return {"available": bool(devices), "devices": [_device_body(d) for d in devices]}


def _batch_size_for(total_bytes: int | None) -> int:
    if total_bytes is None:
        return 64
    gib = total_bytes / _GIB
    if gib >= 40:
        return 512
    if gib >= 16:
        return 256
    if gib >= 8:
        return 128
    return 64


def recommendations() -> dict[str, Any]:
    """Batch size, mixed precision and memory advice for the first accelerator (or the CPU)."""
    devices = describe_devices()
    if not devices:
        return {
            "device": "cpu",
            "batch_size": 32,
            "mixed_precision": "off",
            "memory_advice": [
                "No GPU: training runs on the CPU; keep models small and epochs few.",
                "Set max_concurrent_jobs to 1 so sessions do not compete for cores.",
            ],
        }
    device = devices[0]
    advice: list[str] = []
    if device.type == "cuda":
        precision = "bf16" if _supports_bf16() else "fp16"
        advice.append(f"Use mixed precision ({precision}) to halve activation memory.")
    else:
        precision = "off"
        advice.append("Apple MPS shares memory with the system: leave headroom for other apps.")
    if device.total_memory_bytes is not None and device.reserved_memory_bytes is not None:
        free = device.total_memory_bytes - device.reserved_memory_bytes
        advice.append(f"About {free / _GIB:.1f} GiB is free on {device.name}.")
        if free < device.total_memory_bytes * 0.2:
            advice.append("Less than 20% free: lower the batch size or max_concurrent_jobs.")
    advice.append("If a run fails out of memory, halve batch_size and retry.")
    return {
        "device": f"{device.type}:{device.index}" if device.index is not None else device.type,
        "batch_size": _batch_size_for(device.total_memory_bytes),
        "mixed_precision": precision,
        "memory_advice": advice,
    }


def _supports_bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
