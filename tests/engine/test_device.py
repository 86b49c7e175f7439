"""Device choice: auto prefers CUDA, then MPS, then CPU; explicit requests are checked."""

from __future__ import annotations

import pytest
import torch
from training_engine.device import describe_devices, resolve_device
from training_engine.errors import DeviceUnavailableError
from training_engine.trainer import fit

from tests.engine.synthetic import make_dataset, make_strategy

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def test_auto_picks_cuda_then_mps_then_cpu() -> None:
    expected = "cuda" if HAS_CUDA else "mps" if HAS_MPS else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_order_holds_whatever_this_machine_has(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, expected: str
) -> None:
    # The accelerators cannot be produced here: pretend which ones exist.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto").type == expected


def test_explicit_cpu_is_always_available() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_unknown_device_name_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(DeviceUnavailableError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_requested_without_cuda_is_refused(name: str) -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        resolve_device(name)


@pytest.mark.skipif(HAS_MPS, reason="checks the refusal on a machine without MPS")
def test_mps_requested_without_mps_is_refused() -> None:
    with pytest.raises(DeviceUnavailableError, match="MPS is not available"):
        resolve_device("mps")


def test_cuda_index_beyond_the_devices_present_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two GPUs cannot be produced here: pretend CUDA has exactly one.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceUnavailableError, match="only 1 CUDA device"):
        resolve_device("cuda:1")


@pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="a CPU-only host reports no accelerator")
def test_cpu_only_host_describes_no_accelerator() -> None:
    assert describe_devices() == []


@pytest.mark.gpu
def test_cuda_devices_report_name_and_memory() -> None:
    devices = describe_devices()
    assert devices and devices[0].type == "cuda"
    assert devices[0].total_memory_bytes is not None and devices[0].total_memory_bytes > 0
    assert devices[0].allocated_memory_bytes is not None


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16", "off"])
def test_training_on_cuda_with_mixed_precision_learns(precision: str) -> None:
    strategy = make_strategy(epochs=3, device="cuda", mixed_precision=precision)
    result = fit(make_dataset(), strategy).result
    assert result.device.startswith("cuda")
    assert result.test_metrics is not None and result.baseline_metrics is not None
    assert result.test_metrics.accuracy > result.baseline_metrics.accuracy
