"""The one seam between the codebase and the accelerators' runtimes: torch.cuda, torch.mps, NVML.

Every question asked of a GPU (is there one, what is it, how much memory is free, its
random state, its utilisation) goes through :class:`DeviceProbe`. The services and the
engine read :func:`current_probe`; tests install a stand-in with :func:`use_probe` to be a
CUDA or MPS machine the test host does not have. torch and ``pynvml`` (the
``nvidia-ml-py`` package) are imported inside the methods that need them, so the session
supervisor can ask NVML which cards exist without loading torch.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_PCI_BUS_ID = re.compile(r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})")


def normalise_uuid(uuid: str | None) -> str | None:
    """A card UUID as one string whoever reports it: NVML writes ``GPU-<hex>``, torch ``<hex>``."""
    if not uuid:
        return None
    text = str(uuid).strip().lower()
    return text.removeprefix("gpu-") or None


def pci_bus_id(domain: int, bus: int, device: int) -> str:
    """The PCI address ``dddd:bb:dd`` of a card (the function number is always 0 for a GPU)."""
    return f"{domain:04x}:{bus:02x}:{device:02x}"


def normalise_pci_bus_id(text: str | None) -> str | None:
    """NVML's ``00000000:65:00.0`` (or ``65:00.0``) as :func:`pci_bus_id` writes it."""
    match = _PCI_BUS_ID.match(text.strip()) if text else None
    if match is None:
        return None
    domain, bus, device = match.groups()
    return pci_bus_id(int(domain or "0", 16), int(bus, 16), int(device, 16))


@dataclass(frozen=True, slots=True)
class CudaCard:
    """One CUDA device as torch sees it in this process (``index`` is torch's ordinal)."""

    index: int
    name: str
    total_memory_bytes: int
    capability: tuple[int, int]
    uuid: str | None  # normalised (normalise_uuid)
    pci_bus_id: str | None  # normalised (pci_bus_id); None where torch does not report it


@dataclass(frozen=True, slots=True)
class NvmlCard:
    """One card as NVML sees it: device-wide memory, utilisation, temperature.

    ``index`` is NVML's own order, which is neither torch's nor ``CUDA_VISIBLE_DEVICES``'s:
    cards are matched by ``uuid`` or ``pci_bus_id``, never by index.
    """

    index: int
    name: str
    uuid: str  # normalised (normalise_uuid)
    pci_bus_id: str | None  # normalised (pci_bus_id)
    total_memory_bytes: int
    used_memory_bytes: int
    free_memory_bytes: int
    utilization_percent: float | None
    temperature_celsius: float | None

    @property
    def visible_devices_entry(self) -> str:
        """How ``CUDA_VISIBLE_DEVICES`` names this card, whatever order CUDA numbers them in."""
        return f"GPU-{self.uuid}"


@dataclass(frozen=True, slots=True)
class AllocatorMemory:
    """What this process's allocator holds on one device (torch's own counters)."""

    allocated_bytes: int
    peak_allocated_bytes: int | None  # None where the backend keeps no peak (MPS)
    reserved_bytes: int | None


class DeviceProbe:
    """The real accelerators of this machine, asked through torch and NVML."""

    # ---- CUDA, through torch (ordinals of this process)

    def cuda_available(self) -> bool:
        import torch

        return bool(torch.cuda.is_available())

    def cuda_device_count(self) -> int:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0

    def cuda_card(self, index: int) -> CudaCard:
        import torch

        props: Any = torch.cuda.get_device_properties(index)
        pci: list[Any] = [
            getattr(props, name, None) for name in ("pci_domain_id", "pci_bus_id", "pci_device_id")
        ]
        return CudaCard(
            index=index,
            name=str(props.name),
            total_memory_bytes=int(props.total_memory),
            capability=(int(props.major), int(props.minor)),
            uuid=normalise_uuid(str(getattr(props, "uuid", "") or "")),
            # Older torch builds do not report the PCI address; the UUID suffices then.
            pci_bus_id=None if None in pci else pci_bus_id(*(int(part) for part in pci)),
        )

    def cuda_free_memory(self, index: int) -> tuple[int, int]:
        """Free and total bytes of the whole card (every process), from the driver."""
        import torch

        free, total = torch.cuda.mem_get_info(index)
        return int(free), int(total)

    # ---- Apple MPS

    def mps_available(self) -> bool:
        import torch

        backend = getattr(torch.backends, "mps", None)
        return bool(backend is not None and backend.is_available())

    def mps_recommended_max_memory(self) -> int | None:
        """The working set Metal recommends for this process: the unified memory's GPU share."""
        import torch

        reader = getattr(torch.mps, "recommended_max_memory", None)
        return int(reader()) if reader is not None else None

    def mps_supports_bf16(self) -> bool:
        """bf16 on MPS needs macOS 14 (torch refuses it below)."""
        import torch

        check = getattr(torch.backends.mps, "is_macos_or_newer", None)
        return bool(check is not None and check(14, 0))

    # ---- either accelerator: this process's allocator, random state, memory cap

    def allocator_memory(self, device: torch.device) -> AllocatorMemory | None:
        """This process's allocations on ``device``; None on the CPU."""
        import torch

        if device.type == "cuda":
            index = _index(device)
            return AllocatorMemory(
                allocated_bytes=int(torch.cuda.memory_allocated(index)),
                peak_allocated_bytes=int(torch.cuda.max_memory_allocated(index)),
                reserved_bytes=int(torch.cuda.memory_reserved(index)),
            )
        if device.type == "mps":
            return AllocatorMemory(
                allocated_bytes=int(torch.mps.current_allocated_memory()),
                peak_allocated_bytes=None,
                reserved_bytes=int(torch.mps.driver_allocated_memory()),
            )
        return None

    def available_memory(self, device: torch.device) -> tuple[int, int] | None:
        """Bytes a new run may still allocate on ``device`` and the device's total; None: CPU."""
        if device.type == "cuda":
            return self.cuda_free_memory(_index(device))
        if device.type == "mps":
            total = self.mps_recommended_max_memory()
            if total is None:
                return None
            used = self.allocator_memory(device)
            held = used.reserved_bytes if used is not None and used.reserved_bytes else 0
            return max(0, total - held), total
        return None

    def memory_fraction(self, device: torch.device) -> float | None:
        """The cap on this process's allocator on ``device``; None where torch cannot say."""
        import torch

        reader = getattr(torch.cuda, "get_per_process_memory_fraction", None)
        if device.type == "cuda" and reader is not None:
            return float(reader(_index(device)))
        return None

    def set_memory_fraction(self, device: torch.device, fraction: float) -> None:
        """Cap this process's allocator at ``fraction`` of ``device``'s memory."""
        import torch

        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(fraction, _index(device))
        elif device.type == "mps":
            torch.mps.set_per_process_memory_fraction(fraction)

    def rng_state(self, device: torch.device) -> torch.Tensor:
        """The random generator state of an accelerator (what dropout draws from there)."""
        import torch

        if device.type == "cuda":
            return torch.cuda.get_rng_state(_index(device))
        if device.type == "mps":
            return torch.mps.get_rng_state()
        raise ValueError(f"{device} has no generator of its own: the CPU's is torch's")

    def set_rng_state(self, device: torch.device, state: torch.Tensor) -> None:
        import torch

        if device.type == "cuda":
            torch.cuda.set_rng_state(state, _index(device))
        elif device.type == "mps":
            torch.mps.set_rng_state(state)
        else:
            raise ValueError(f"{device} has no generator of its own: the CPU's is torch's")

    # ---- NVML (no torch): device-wide readings of every card on the machine

    def nvml_cards(self) -> list[NvmlCard] | None:
        """Every card NVML reports, in NVML's order; None without NVML or a driver."""
        try:
            import pynvml  # the nvidia-ml-py package: installed by the gpu extra
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            # No driver (a Mac, a CPU box) is an absent reading, not a failure.
            logger.debug("NVML unavailable: %s", exc)
            return None
        try:
            return [_nvml_card(pynvml, index) for index in range(pynvml.nvmlDeviceGetCount())]
        except pynvml.NVMLError as exc:
            logger.warning("NVML did not answer: %s", exc)
            return None
        finally:
            pynvml.nvmlShutdown()


def _index(device: torch.device) -> int:
    # A bare "cuda" is the current device, which these processes never change from 0.
    return device.index if device.index is not None else 0


def _nvml_card(pynvml: Any, index: int) -> NvmlCard:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    try:
        utilization: float | None = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except pynvml.NVMLError:  # MIG instances and some boards do not report it
        utilization = None
    try:
        temperature: float | None = float(
            pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
        )
    except pynvml.NVMLError:
        temperature = None
    name, uuid, bus_id = (
        _text(pynvml.nvmlDeviceGetName(handle)),
        _text(pynvml.nvmlDeviceGetUUID(handle)),
        _text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
    )
    return NvmlCard(
        index=index,
        name=name,
        uuid=normalise_uuid(uuid) or uuid,
        pci_bus_id=normalise_pci_bus_id(bus_id),
        total_memory_bytes=int(memory.total),
        used_memory_bytes=int(memory.used),
        free_memory_bytes=int(memory.free),
        utilization_percent=utilization,
        temperature_celsius=temperature,
    )


def _text(value: Any) -> str:
    # Older bindings return bytes, newer ones str.
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


_current: DeviceProbe = DeviceProbe()


def current_probe() -> DeviceProbe:
    """The probe every device question goes to (the real one unless a test replaced it)."""
    return _current


@contextlib.contextmanager
def use_probe(probe: DeviceProbe) -> Iterator[DeviceProbe]:
    """Answer every device question with ``probe`` inside the block (tests)."""
    global _current
    previous, _current = _current, probe
    try:
        yield probe
    finally:
        _current = previous
