"""Device choice: auto prefers CUDA, then MPS, then CPU; explicit requests are checked;
every device name reported is one that is accepted.

The accelerators this host lacks are stand-ins (tests/fixtures/devices.py); the tests
marked ``gpu`` run on a real CUDA machine.
"""

from __future__ import annotations

import pytest
import torch
from training_engine.device import (
    describe_devices,
    device_name,
    resolve_device,
    training_device,
)
from training_engine.device_probe import normalise_pci_bus_id, normalise_uuid, use_probe
from training_engine.errors import DeviceUnavailableError
from training_engine.strategy.values import DEVICE_NAME
from training_engine.trainer import fit

from tests.engine.synthetic import make_dataset, make_strategy
from tests.fixtures.devices import FakeDeviceProbe, cuda_card

CPU_ONLY = FakeDeviceProbe()
TWO_GPUS = FakeDeviceProbe([cuda_card(0), cuda_card(1)])
MAC = FakeDeviceProbe(mps=True)


def test_auto_on_this_machine_is_one_of_its_devices() -> None:
    expected = describe_devices()[0].device if describe_devices() else "cpu"
    assert device_name(resolve_device("auto")) == expected
    assert resolve_device(None) == resolve_device("auto")


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (FakeDeviceProbe([cuda_card(0)], mps=True), "cuda:0"),
        (MAC, "mps"),
        (CPU_ONLY, "cpu"),
    ],
)
def test_auto_picks_cuda_then_mps_then_cpu(probe: FakeDeviceProbe, expected: str) -> None:
    assert device_name(resolve_device("auto", probe)) == expected
    with use_probe(probe):
        assert device_name(resolve_device(None)) == expected


def test_explicit_cpu_is_always_available() -> None:
    assert resolve_device("cpu", TWO_GPUS) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_unknown_device_name_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(DeviceUnavailableError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_requested_without_cuda_is_refused(name: str) -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        resolve_device(name, CPU_ONLY)


def test_mps_requested_without_mps_is_refused() -> None:
    with pytest.raises(DeviceUnavailableError, match="MPS is not available"):
        resolve_device("mps", TWO_GPUS)


def test_cuda_and_auto_leave_the_card_open_and_name_it_cuda_0() -> None:
    # Unindexed: the first card the process sees, which the supervisor may choose.
    for spec in ("cuda", "auto"):
        assert resolve_device(spec, TWO_GPUS) == torch.device("cuda")
        assert device_name(resolve_device(spec, TWO_GPUS)) == "cuda:0"


def test_cuda_index_beyond_the_devices_present_is_refused() -> None:
    one_gpu = FakeDeviceProbe([cuda_card(0)])
    assert resolve_device("cuda:0", one_gpu) == torch.device("cuda:0")
    with pytest.raises(DeviceUnavailableError, match="only 1 CUDA device"):
        resolve_device("cuda:1", one_gpu)


def test_a_host_without_accelerators_describes_none() -> None:
    assert describe_devices(CPU_ONLY) == []


@pytest.mark.parametrize("probe", [TWO_GPUS, MAC, CPU_ONLY], ids=["cuda", "mps", "cpu"])
def test_every_device_reported_is_a_name_that_is_accepted(probe: FakeDeviceProbe) -> None:
    for device in describe_devices(probe):
        assert DEVICE_NAME.match(device.device), device.device
        assert device_name(resolve_device(device.device, probe)) == device.device


def test_mps_is_named_as_strategies_write_it() -> None:
    [mps] = describe_devices(MAC)
    assert (mps.device, mps.type, mps.total_memory_bytes) == ("mps", "mps", 48 * 1024**3)
    assert device_name(torch.device("mps:0")) == "mps"


@pytest.mark.parametrize("model_type", ["lstm", "gru"])
def test_auto_keeps_recurrent_models_off_mps(model_type: str) -> None:
    assert training_device("auto", model_type, MAC) == torch.device("cpu")
    assert training_device("mps", model_type, MAC) == torch.device("mps")


@pytest.mark.parametrize("model_type", ["mlp", "transformer"])
def test_auto_uses_mps_for_other_models(model_type: str) -> None:
    assert training_device("auto", model_type, MAC) == torch.device("mps")


def test_auto_uses_cuda_for_recurrent_models() -> None:
    assert training_device("auto", "lstm", TWO_GPUS) == torch.device("cuda")


@pytest.mark.parametrize(
    ("reported", "normalised"),
    [
        ("GPU-FFC79498-8ff3-c2dc-3b0d-fafd804516ae", "ffc79498-8ff3-c2dc-3b0d-fafd804516ae"),
        ("ffc79498-8ff3-c2dc-3b0d-fafd804516ae", "ffc79498-8ff3-c2dc-3b0d-fafd804516ae"),
        ("", None),
    ],
)
def test_nvml_and_torch_uuids_normalise_alike(reported: str, normalised: str | None) -> None:
    assert normalise_uuid(reported) == normalised


@pytest.mark.parametrize(
    ("reported", "normalised"),
    [("00000000:65:00.0", "0000:65:00"), ("65:00.0", "0000:65:00"), ("0001:0A:1F.0", "0001:0a:1f")],
)
def test_pci_bus_ids_normalise_alike(reported: str, normalised: str) -> None:
    assert normalise_pci_bus_id(reported) == normalised


@pytest.mark.gpu
def test_cuda_devices_report_name_memory_and_an_identity() -> None:
    devices = describe_devices()
    assert devices and devices[0].type == "cuda" and devices[0].device == "cuda:0"
    assert devices[0].total_memory_bytes is not None and devices[0].total_memory_bytes > 0
    assert devices[0].uuid is not None and devices[0].capability is not None


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16", "off"])
def test_training_on_cuda_with_mixed_precision_learns(precision: str) -> None:
    strategy = make_strategy(epochs=3, device="cuda", mixed_precision=precision)
    result = fit(make_dataset(), strategy).result
    assert result.device.startswith("cuda")
    assert result.test_metrics is not None and result.baseline_metrics is not None
    assert result.test_metrics.accuracy > result.baseline_metrics.accuracy
