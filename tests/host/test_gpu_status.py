"""``/gpu/status``, ``/gpu/recommendations`` and ``/metrics`` measure the GPU where it happens.

Device-wide readings come from NVML, matched to torch's devices by UUID or PCI bus id;
MPS memory from what the workers report. The cards are stand-ins (tests/fixtures/devices.py)
answering over real HTTP; the tests marked ``gpu`` ask a real card.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect
from training_engine.device import device_name, resolve_device
from training_engine.device_probe import current_probe, use_probe
from training_engine.progress import DeviceMemory
from training_host.gpu import gpu_status, recommendations

from tests.fixtures.devices import GIB, FakeDeviceProbe, cuda_card, nvml_card
from tests.fixtures.waiting import wait_until
from tests.host.conftest import AppFactory, wait_for_status

# torch numbers the cards one way, NVML the other: index 0 is not index 0.
CROSSED = FakeDeviceProbe(
    [cuda_card(0, uuid="aaaa-1"), cuda_card(1, uuid="bbbb-2")],
    nvml=[
        nvml_card(0, "bbbb-2", used=30 * GIB, utilization=90.0, temperature=71.0),
        nvml_card(1, "aaaa-1", used=2 * GIB, utilization=10.0, temperature=40.0),
    ],
)
MAC = FakeDeviceProbe(mps=True, mps_recommended=24 * GIB)


@pytest.fixture
def crossed_url(start_app: AppFactory) -> Iterator[str]:
    """A host service (in this process) whose two cards are ``CROSSED``."""
    with use_probe(CROSSED):
        url, _ = start_app()
        yield url


@pytest.fixture
def crossed_client(crossed_url: str) -> httpx.Client:
    return httpx.Client(base_url=crossed_url, timeout=30)


@pytest.mark.slow
def test_each_card_is_read_from_its_own_nvml_entry_not_the_same_index(
    crossed_client: httpx.Client,
) -> None:
    devices = crossed_client.get("/gpu/status").json()["devices"]
    assert [(d["device"], d["uuid"]) for d in devices] == [
        ("cuda:0", "aaaa-1"),
        ("cuda:1", "bbbb-2"),
    ]
    first, second = devices
    assert (first["used_memory_bytes"], first["utilization_percent"]) == (2 * GIB, 10.0)
    assert (second["used_memory_bytes"], second["temperature_celsius"]) == (30 * GIB, 71.0)
    assert first["free_memory_bytes"] == 78 * GIB and first["memory_source"] == "nvml"
    assert first["compute_capability"] == "8.0" and first["sessions"] == []


@pytest.mark.slow
def test_metrics_export_each_cards_readings_under_its_device_name(
    crossed_client: httpx.Client,
) -> None:
    text = crossed_client.get("/metrics").text
    assert 'training_host_gpu_memory_bytes{device="cuda:0",kind="used"} 2.147483648e+09' in text
    assert 'training_host_gpu_utilization_percent{device="cuda:1"} 90.0' in text
    assert 'training_host_gpu_temperature_celsius{device="cuda:0"} 40.0' in text


@pytest.mark.slow
def test_every_device_the_service_reports_is_one_it_accepts(crossed_client: httpx.Client) -> None:
    for device in crossed_client.get("/gpu/status").json()["devices"]:
        assert device_name(resolve_device(device["device"], CROSSED)) == device["device"]
    advice = crossed_client.get("/gpu/recommendations").json()
    assert advice["device"] == "cuda:0" and advice["mixed_precision"] == "bf16"


@pytest.mark.slow
def test_the_dashboard_shows_each_card_with_its_device_wide_memory(
    crossed_url: str, browser_page: Page
) -> None:
    browser_page.goto(crossed_url + "/")
    cards = browser_page.locator("[data-role=gpu]")
    expect(cards).to_have_count(2, timeout=10_000)
    expect(cards.nth(0)).to_contain_text("(cuda:0)")
    expect(cards.nth(0)).to_contain_text("2.0 GiB of 80.0 GiB")
    expect(cards.nth(0)).to_contain_text("10 %")
    expect(cards.nth(1)).to_contain_text("30.0 GiB of 80.0 GiB")


def test_a_card_torch_reports_without_a_uuid_is_matched_by_its_pci_bus_id() -> None:
    probe = FakeDeviceProbe(
        [cuda_card(0, uuid="", pci_bus_id="0000:41:00")],
        nvml=[
            nvml_card(0, "other", pci_bus_id="0000:01:00", used=9 * GIB),
            nvml_card(1, "mine", pci_bus_id="0000:41:00", used=3 * GIB),
        ],
    )
    [device] = gpu_status(probe=probe)["devices"]
    assert device["used_memory_bytes"] == 3 * GIB


def test_without_nvml_a_cards_live_memory_is_unknown_not_guessed() -> None:
    [device] = gpu_status(probe=FakeDeviceProbe([cuda_card(0)], nvml=None))["devices"]
    assert device["memory_source"] == "unavailable"
    assert (device["used_memory_bytes"], device["free_memory_bytes"]) == (None, None)
    assert device["total_memory_bytes"] == 80 * GIB
    assert "utilization_percent" not in device


def test_running_sessions_are_listed_under_the_card_their_worker_reports() -> None:
    sessions = {
        "on-a": DeviceMemory("cuda:0", "aaaa-1", 3 * GIB, 4 * GIB, 5 * GIB),
        # Placed on card b, whose worker sees it as cuda:0 as well.
        "on-b": DeviceMemory("cuda:0", "bbbb-2", 1 * GIB, 1 * GIB, 2 * GIB),
    }
    first, second = gpu_status(sessions, probe=CROSSED)["devices"]
    assert [s["training_id"] for s in first["sessions"]] == ["on-a"]
    assert first["allocated_memory_bytes"] == 3 * GIB
    assert first["sessions"][0]["peak_allocated_memory_bytes"] == 4 * GIB
    assert [s["training_id"] for s in second["sessions"]] == ["on-b"]
    assert second["reserved_memory_bytes"] == 2 * GIB


def test_mps_memory_is_what_the_workers_hold_beside_the_recommended_working_set() -> None:
    sessions = {
        "one": DeviceMemory("mps", None, 2 * GIB, None, 3 * GIB),
        "two": DeviceMemory("mps", None, 1 * GIB, None, 1 * GIB),
    }
    [device] = gpu_status(sessions, probe=MAC)["devices"]
    assert (device["device"], device["memory_source"]) == ("mps", "sessions")
    assert device["total_memory_bytes"] == 24 * GIB
    assert (device["used_memory_bytes"], device["free_memory_bytes"]) == (4 * GIB, 20 * GIB)
    assert device["allocated_memory_bytes"] == 3 * GIB
    assert {s["training_id"] for s in device["sessions"]} == {"one", "two"}


@pytest.mark.parametrize(
    ("probe", "device", "precision"),
    [
        (MAC, "mps", "off"),
        (FakeDeviceProbe([cuda_card(0, capability=(7, 5))], nvml=[]), "cuda:0", "fp16"),
        (FakeDeviceProbe([cuda_card(0, capability=(9, 0))], nvml=[]), "cuda:0", "bf16"),
        (FakeDeviceProbe(), "cpu", "off"),
    ],
)
def test_recommendations_name_an_accepted_device_and_what_auto_precision_runs(
    probe: FakeDeviceProbe, device: str, precision: str
) -> None:
    advice = recommendations(probe)
    assert (advice["device"], advice["mixed_precision"]) == (device, precision)
    assert device_name(resolve_device(advice["device"], probe)) == device


@pytest.mark.gpu
def test_gpu_status_on_a_cuda_host_reads_every_card_from_nvml() -> None:
    cards = current_probe().nvml_cards()
    assert cards, "nvidia-ml-py is installed by make test and the driver answers"
    for device in gpu_status()["devices"]:
        assert device["memory_source"] == "nvml"
        assert device["uuid"] in {card.uuid for card in cards}
        assert 0 < device["used_memory_bytes"] <= device["total_memory_bytes"]
        assert device["utilization_percent"] is not None


@pytest.mark.gpu
@pytest.mark.slow
def test_a_session_training_on_cuda_is_listed_under_its_card(start_app: AppFactory) -> None:
    url, _ = start_app(default_device="cuda")
    client = httpx.Client(base_url=url, timeout=30)
    body = {"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 300, "batch_size": 16}}
    training_id = client.post("/trainings/start", json=body).json()["training_id"]

    def listed() -> dict[str, object] | None:
        for device in client.get("/gpu/status").json()["devices"]:
            for session in device["sessions"]:
                if session["training_id"] == training_id:
                    return dict(session)
        return None

    session = wait_until(listed, 120, "the session under its card")
    assert session["device"] == "cuda:0"
    assert isinstance(session["allocated_memory_bytes"], int)
    assert session["allocated_memory_bytes"] > 0
    client.post(f"/trainings/{training_id}/stop")
    wait_for_status(client, training_id, {"cancelled", "completed"})
