"""What the host's accelerators hold, measured where it happens, and advice for training on them.

Training runs in worker processes, so this service's own allocator says nothing about
it. A CUDA card's memory, utilisation and temperature come from NVML, which sees
every process; NVML numbers cards its own way, so each of torch's devices is matched
to its NVML card by UUID (or PCI bus id), never by index. MPS has no device-wide
reading: its memory is what the workers report of their own allocations, beside the
working set Metal recommends. Each running session's device and memory, from its
worker's progress events, is listed under its card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from training_engine.device import DeviceInfo, describe_devices
from training_engine.device_probe import DeviceProbe, NvmlCard, current_probe
from training_engine.precision import choose_precision
from training_engine.progress import DeviceMemory

_GIB = 1024**3


def match_nvml_card(device: DeviceInfo, cards: Sequence[NvmlCard]) -> NvmlCard | None:
    """The NVML card that is torch's ``device``: same UUID, else same PCI bus id."""
    if device.uuid is not None:
        for card in cards:
            if card.uuid == device.uuid:
                return card
    if device.pci_bus_id is not None:
        for card in cards:
            if card.pci_bus_id == device.pci_bus_id:
                return card
    return None


def _sessions_on(
    device: DeviceInfo, sessions: Mapping[str, DeviceMemory]
) -> list[tuple[str, DeviceMemory]]:
    """The running sessions whose worker reported allocations on ``device``."""
    if device.type == "mps":
        return [(tid, memory) for tid, memory in sessions.items() if memory.device == "mps"]
    # A worker may see its card as cuda:0 (CUDA_VISIBLE_DEVICES): the UUID says which.
    return [
        (tid, memory)
        for tid, memory in sessions.items()
        if memory.uuid is not None and memory.uuid == device.uuid
    ]


def _device_body(
    device: DeviceInfo,
    nvml: NvmlCard | None,
    sessions: list[tuple[str, DeviceMemory]],
) -> dict[str, Any]:
    allocated = sum(memory.allocated_bytes for _, memory in sessions)
    reserved = sum(memory.reserved_bytes or memory.allocated_bytes for _, memory in sessions)
    total = nvml.total_memory_bytes if nvml is not None else device.total_memory_bytes
    used: int | None
    free: int | None
    if nvml is not None:
        source, used, free = "nvml", nvml.used_memory_bytes, nvml.free_memory_bytes
    elif device.type == "mps":
        # Unified memory: the sessions' allocations are what the GPU side holds for us.
        source, used = "sessions", reserved
        free = max(0, total - used) if total is not None else None
    else:
        source, used, free = "unavailable", None, None
    body: dict[str, Any] = {
        "device": device.device,
        "name": device.name,
        "type": device.type,
        "index": device.index,
        "uuid": device.uuid,
        "compute_capability": (
            f"{device.capability[0]}.{device.capability[1]}" if device.capability else None
        ),
        "memory_source": source,
        "total_memory_bytes": total,
        "used_memory_bytes": used,
        "free_memory_bytes": free,
        "allocated_memory_bytes": allocated,
        "reserved_memory_bytes": reserved,
        "sessions": [
            {
                "training_id": training_id,
                "device": memory.device,
                "allocated_memory_bytes": memory.allocated_bytes,
                "peak_allocated_memory_bytes": memory.peak_allocated_bytes,
                "reserved_memory_bytes": memory.reserved_bytes,
            }
            for training_id, memory in sessions
        ],
    }
    if nvml is not None:
        body["utilization_percent"] = nvml.utilization_percent
        body["temperature_celsius"] = nvml.temperature_celsius
    return body


def gpu_status(
    sessions: Mapping[str, DeviceMemory] | None = None, probe: DeviceProbe | None = None
) -> dict[str, Any]:
    """Every accelerator torch sees, measured device-wide; ``available`` False without one.

    Args:
        sessions: what each running session last reported of its allocations, by id.
        probe: the accelerators to ask (default: :func:`current_probe`).
    """
    probe = probe or current_probe()
    devices = describe_devices(probe)
    cards = probe.nvml_cards() if any(d.type == "cuda" for d in devices) else None
    running = sessions or {}
    return {
        "available": bool(devices),
        "devices": [
            _device_body(
                device,
                match_nvml_card(device, cards or []) if device.type == "cuda" else None,
                _sessions_on(device, running),
            )
            for device in devices
        ],
    }


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


def recommendations(probe: DeviceProbe | None = None) -> dict[str, Any]:
    """Batch size, mixed precision and memory advice for the first accelerator (or the CPU).

    ``device`` is a name a strategy accepts (``cuda:0``, ``mps``, ``cpu``).
    """
    probe = probe or current_probe()
    status = gpu_status(probe=probe)
    if not status["available"]:
        return {
            "device": "cpu",
            "batch_size": 32,
            "mixed_precision": "off",
            "memory_advice": [
                "No GPU: training runs on the CPU; keep models small and epochs few.",
                "Set max_concurrent_jobs to 1 so sessions do not compete for cores.",
            ],
        }
    device = status["devices"][0]
    # What mixed_precision: auto runs there (bf16 only where the card has it natively).
    chosen = choose_precision("auto", torch.device(device["device"]), probe)
    precision = "off" if chosen.dtype is None else chosen.name
    advice: list[str] = []
    if device["type"] == "cuda":
        advice.append(f"Use mixed precision ({precision}) to halve activation memory.")
    else:
        advice.append(
            "Apple MPS shares memory with the system: leave headroom for other apps; "
            "mixed_precision fp16 or bf16 opts in to MPS autocast."
        )
    total, free = device["total_memory_bytes"], device["free_memory_bytes"]
    if total is not None and free is not None:
        advice.append(f"About {free / _GIB:.1f} GiB is free on {device['name']}.")
        if free < total * 0.2:
            advice.append("Less than 20% free: lower the batch size or max_concurrent_jobs.")
    advice.append("If a run fails out of memory, halve batch_size and retry.")
    return {
        "device": device["device"],
        "batch_size": _batch_size_for(total),
        "mixed_precision": precision,
        "memory_advice": advice,
    }
