"""Which GPU a session's worker trains on: the least loaded visible card, chosen without torch.

The session supervisor starts each worker with ``CUDA_VISIBLE_DEVICES`` naming one card
by its UUID, so ``auto`` and ``cuda`` sessions spread over the cards instead of all
landing on the first; inside the worker that card is ``cuda:0``. The supervisor never
loads torch, so it sees the cards through NVML, whose order is neither CUDA's nor
``CUDA_VISIBLE_DEVICES``'s: cards are named by UUID throughout. Everything but
:class:`GpuPlacer` is a pure function.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from training_engine.device_probe import DeviceProbe, NvmlCard, normalise_uuid

# cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2); read when cuBLAS starts.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"
# Device requests a placement applies to; cpu, mps and cuda:N name their device already.
PLACED_DEVICES = frozenset({"auto", "cuda"})


def visible_cards(
    cards: Sequence[NvmlCard], cuda_visible_devices: str | None, cuda_device_order: str | None
) -> list[NvmlCard] | None:
    """The cards this service's workers may use, given the service's own environment.

    Args:
        cards: every card NVML reports, in NVML's order.
        cuda_visible_devices: the service's ``CUDA_VISIBLE_DEVICES`` (None: unset).
        cuda_device_order: the service's ``CUDA_DEVICE_ORDER`` (None: CUDA's default,
            fastest first).

    Returns:
        The cards, or None when they cannot be told apart without CUDA itself: ordinals
        in CUDA's fastest-first order, or MIG instances. Workers then inherit the
        service's environment unchanged.
    """
    if cuda_visible_devices is None:
        return list(cards)
    entries = [entry.strip() for entry in cuda_visible_devices.split(",") if entry.strip()]
    chosen: list[NvmlCard] = []
    for entry in entries:
        if entry.startswith("-"):
            break  # CUDA stops at the first invalid ordinal
        if entry.isdigit():
            if cuda_device_order != "PCI_BUS_ID":
                return None
            by_bus = sorted(cards, key=lambda card: card.pci_bus_id or "")
            index = int(entry)
            if index >= len(by_bus):
                break
            chosen.append(by_bus[index])
        elif entry.upper().startswith("GPU-"):
            wanted = normalise_uuid(entry) or ""
            # CUDA accepts a unique prefix of the UUID.
            matches = [card for card in cards if card.uuid.startswith(wanted)]
            if len(matches) != 1:
                break
            chosen.append(matches[0])
        else:
            return None  # MIG-... and anything else this service cannot map
    return chosen


def least_loaded(cards: Sequence[NvmlCard], sessions_on: Mapping[str, int]) -> NvmlCard | None:
    """The card to start the next session on: fewest of this service's sessions, then the
    most free memory (NVML, every process), then the first."""
    if not cards:
        return None
    order = {card.uuid: position for position, card in enumerate(cards)}
    return min(
        cards,
        key=lambda card: (
            sessions_on.get(card.uuid, 0),
            -card.free_memory_bytes,
            order[card.uuid],
        ),
    )


def worker_environment(card: NvmlCard | None, *, deterministic: bool) -> dict[str, str]:
    """Environment variables a worker sets before CUDA starts in it.

    ``CUDA_VISIBLE_DEVICES`` names its card (by UUID: immune to CUDA's and NVML's
    orders); ``CUBLAS_WORKSPACE_CONFIG`` makes cuBLAS deterministic for a
    ``deterministic`` run (read once, when cuBLAS starts).
    """
    environment: dict[str, str] = {}
    if card is not None:
        environment["CUDA_VISIBLE_DEVICES"] = card.visible_devices_entry
    if deterministic:
        environment["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    return environment


@dataclass(frozen=True, slots=True)
class GpuPlacement:
    """Where one worker trains: its card (None: wherever its environment says) and the
    environment variables that put it there."""

    card_uuid: str | None
    environment: dict[str, str] = field(default_factory=dict)


class GpuPlacer:
    """Chooses each new session's card from NVML's current readings.

    Args:
        probe: asked for NVML's cards at each placement.
        environment: the service's environment (``CUDA_VISIBLE_DEVICES``,
            ``CUDA_DEVICE_ORDER``), read once here.
    """

    def __init__(self, probe: DeviceProbe, environment: Mapping[str, str]) -> None:
        self._probe = probe
        self._visible = environment.get("CUDA_VISIBLE_DEVICES")
        self._order = environment.get("CUDA_DEVICE_ORDER")

    def place(
        self, device: str, *, deterministic: bool, running_on: Iterable[str | None]
    ) -> GpuPlacement:
        """The placement of a session asking for ``device``.

        Args:
            device: the session's device request.
            deterministic: the session trains with ``deterministic``.
            running_on: the card UUID of each session running now (None: not placed).
        """
        environment = worker_environment(None, deterministic=deterministic)
        if device.strip().lower() not in PLACED_DEVICES:
            return GpuPlacement(None, environment)
        cards = self._probe.nvml_cards()
        visible = None if cards is None else visible_cards(cards, self._visible, self._order)
        # One card (or none) needs no choosing: the worker inherits the service's view.
        if visible is None or len(visible) < 2:
            return GpuPlacement(None, environment)
        sessions = Counter(uuid for uuid in running_on if uuid is not None)
        card = least_loaded(visible, sessions)
        return GpuPlacement(
            card.uuid if card else None, worker_environment(card, deterministic=deterministic)
        )
