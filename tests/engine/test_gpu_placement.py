"""Sessions spread over the visible GPUs, least loaded first, each worker told its card by UUID.

NVML's cards are stand-ins (tests/fixtures/devices.py): the choice depends only on what
NVML and the service's environment say.
"""

from __future__ import annotations

import pytest
from training_engine.device_probe import NvmlCard
from training_engine.gpu_placement import (
    GpuPlacer,
    least_loaded,
    visible_cards,
    worker_environment,
)

from tests.fixtures.devices import GIB, FakeDeviceProbe, nvml_card

# NVML's order is not PCI bus order here, as on machines where it differs from CUDA's.
CARDS = [
    nvml_card(0, "cccc0000-0000", pci_bus_id="0000:81:00", used=10 * GIB),
    nvml_card(1, "aaaa0000-0000", pci_bus_id="0000:01:00", used=2 * GIB),
    nvml_card(2, "bbbb0000-0000", pci_bus_id="0000:41:00", used=30 * GIB),
]


def _uuids(cards: list[NvmlCard] | None) -> list[str] | None:
    return None if cards is None else [card.uuid for card in cards]


def test_every_card_is_visible_when_the_service_restricts_none() -> None:
    assert _uuids(visible_cards(CARDS, None, None)) == [
        "cccc0000-0000",
        "aaaa0000-0000",
        "bbbb0000-0000",
    ]


def test_cards_named_by_uuid_or_a_unique_prefix_are_the_visible_ones() -> None:
    visible = visible_cards(CARDS, "GPU-bbbb0000-0000, GPU-aaaa", None)
    assert _uuids(visible) == ["bbbb0000-0000", "aaaa0000-0000"]


def test_ordinals_in_pci_bus_order_are_mapped_through_the_bus_ids() -> None:
    assert _uuids(visible_cards(CARDS, "2,0", "PCI_BUS_ID")) == ["cccc0000-0000", "aaaa0000-0000"]


@pytest.mark.parametrize(
    ("visible", "order"), [("0,1", None), ("0,1", "FASTEST_FIRST"), ("MIG-1234", None)]
)
def test_cards_that_only_cuda_could_identify_are_left_alone(
    visible: str, order: str | None
) -> None:
    assert visible_cards(CARDS, visible, order) is None


@pytest.mark.parametrize("visible", ["", "-1", "GPU-ffff"])
def test_no_card_is_visible_when_the_service_hides_them_all(visible: str) -> None:
    assert visible_cards(CARDS, visible, None) == []


def test_the_least_loaded_card_has_fewest_sessions_then_most_free_memory() -> None:
    assert least_loaded(CARDS, {}).uuid == "aaaa0000-0000"  # most free memory
    busy = {"aaaa0000-0000": 1}
    assert least_loaded(CARDS, busy).uuid == "cccc0000-0000"
    assert least_loaded(CARDS, {"aaaa0000-0000": 1, "cccc0000-0000": 1}).uuid == "bbbb0000-0000"
    assert least_loaded([], {}) is None


def test_ties_go_to_nvmls_first_card() -> None:
    alike = [nvml_card(0, "x"), nvml_card(1, "y")]
    assert least_loaded(alike, {}).uuid == "x"


def test_a_worker_is_given_its_card_by_uuid_and_a_deterministic_cublas() -> None:
    assert worker_environment(CARDS[1], deterministic=False) == {
        "CUDA_VISIBLE_DEVICES": "GPU-aaaa0000-0000"
    }
    assert worker_environment(None, deterministic=True) == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def test_sessions_spread_over_the_cards_one_each_before_any_shares() -> None:
    placer = GpuPlacer(FakeDeviceProbe(nvml=CARDS), {})
    running: list[str | None] = []
    for _ in range(4):
        placement = placer.place("auto", deterministic=False, running_on=running)
        assert placement.environment == {"CUDA_VISIBLE_DEVICES": f"GPU-{placement.card_uuid}"}
        running.append(placement.card_uuid)
    assert running == ["aaaa0000-0000", "cccc0000-0000", "bbbb0000-0000", "aaaa0000-0000"]


@pytest.mark.parametrize("device", ["cpu", "mps", "cuda:1"])
def test_a_session_that_names_its_device_is_not_placed(device: str) -> None:
    placement = GpuPlacer(FakeDeviceProbe(nvml=CARDS), {}).place(
        device, deterministic=True, running_on=[]
    )
    assert placement.card_uuid is None
    assert placement.environment == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


@pytest.mark.parametrize(
    "probe",
    [FakeDeviceProbe(nvml=None), FakeDeviceProbe(nvml=CARDS[:1])],
    ids=["no NVML", "one card"],
)
def test_nothing_is_chosen_without_nvml_or_with_one_card(probe: FakeDeviceProbe) -> None:
    placement = GpuPlacer(probe, {}).place("cuda", deterministic=False, running_on=[])
    assert (placement.card_uuid, placement.environment) == (None, {})


def test_the_services_own_restriction_is_respected() -> None:
    placer = GpuPlacer(
        FakeDeviceProbe(nvml=CARDS), {"CUDA_VISIBLE_DEVICES": "GPU-bbbb0000-0000,GPU-cccc0000-0000"}
    )
    first = placer.place("auto", deterministic=False, running_on=[])
    second = placer.place("auto", deterministic=False, running_on=[first.card_uuid])
    assert {first.card_uuid, second.card_uuid} == {"bbbb0000-0000", "cccc0000-0000"}
