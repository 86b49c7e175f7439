"""Mixed precision that is what it says, TF32 where it exists, deterministic mode when asked.

The cards are stand-ins (tests/fixtures/devices.py): the rules depend only on what a card
reports (its compute capability), which is all they are asked.
"""

from __future__ import annotations

import os

import pytest
import torch
from training_engine.precision import choose_precision, device_modes, process_switches

from tests.fixtures.devices import FakeDeviceProbe, cuda_card

AMPERE = FakeDeviceProbe([cuda_card(0, name="NVIDIA A100", capability=(8, 0))])
TURING = FakeDeviceProbe([cuda_card(0, name="Tesla T4", capability=(7, 5))])
MAC = FakeDeviceProbe(mps=True)
OLD_MAC = FakeDeviceProbe(mps=True, mps_bf16=False)
CUDA, MPS, CPU = torch.device("cuda:0"), torch.device("mps"), torch.device("cpu")


@pytest.mark.parametrize(
    ("probe", "mode", "dtype"),
    [
        (AMPERE, "auto", torch.bfloat16),
        (AMPERE, "bf16", torch.bfloat16),
        (AMPERE, "fp16", torch.float16),
        (TURING, "auto", torch.float16),
        (TURING, "fp16", torch.float16),
        (AMPERE, "off", None),
        (TURING, "off", None),
    ],
)
def test_cuda_precision_follows_the_cards_compute_capability(
    probe: FakeDeviceProbe, mode: str, dtype: torch.dtype | None
) -> None:
    chosen = choose_precision(mode, CUDA, probe)
    assert chosen.dtype == dtype
    assert chosen.note is None
    assert chosen.needs_scaler == (dtype == torch.float16)


def test_bf16_asked_of_a_card_that_only_emulates_it_runs_fp16_and_says_so() -> None:
    chosen = choose_precision("bf16", CUDA, TURING)
    assert (chosen.dtype, chosen.needs_scaler) == (torch.float16, True)
    assert chosen.note is not None
    assert "Tesla T4" in chosen.note and "7.5" in chosen.note and "fp16" in chosen.note


def test_the_chosen_cuda_device_is_asked_not_the_first() -> None:
    mixed = FakeDeviceProbe([cuda_card(0, capability=(7, 0)), cuda_card(1, capability=(9, 0))])
    assert choose_precision("auto", torch.device("cuda:0"), mixed).dtype == torch.float16
    assert choose_precision("auto", torch.device("cuda:1"), mixed).dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("probe", "mode", "dtype", "noted"),
    [
        (MAC, "auto", None, True),
        (MAC, "fp16", torch.float16, False),
        (MAC, "bf16", torch.bfloat16, False),
        (OLD_MAC, "bf16", None, True),
        (MAC, "off", None, False),
    ],
)
def test_mps_autocast_is_opt_in_and_a_fallback_says_what_runs(
    probe: FakeDeviceProbe, mode: str, dtype: torch.dtype | None, noted: bool
) -> None:
    chosen = choose_precision(mode, MPS, probe)
    assert chosen.dtype == dtype
    assert (chosen.note is not None) == noted
    if noted:
        assert chosen.note is not None and "fp32" in chosen.note


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_cpu_trains_in_fp32_and_an_explicit_request_says_so(mode: str) -> None:
    chosen = choose_precision(mode, CPU, FakeDeviceProbe())
    assert chosen.dtype is None and chosen.name == "fp32"
    assert chosen.note is not None and mode in chosen.note


def test_auto_on_the_cpu_is_fp32_without_a_note() -> None:
    assert choose_precision("auto", CPU, FakeDeviceProbe()).note is None


def test_tf32_is_on_for_ampere_and_put_back_afterwards() -> None:
    before = process_switches()
    with device_modes(False, CUDA, AMPERE):
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cudnn.allow_tf32 is True
        assert torch.are_deterministic_algorithms_enabled() == before[0]
    assert process_switches() == before


def test_tf32_is_left_alone_on_older_cards_and_the_cpu() -> None:
    before = process_switches()
    for device, probe in ((CUDA, TURING), (CPU, FakeDeviceProbe())):
        with device_modes(False, device, probe):
            assert process_switches() == before


def test_deterministic_mode_errs_instead_of_warning_and_turns_tf32_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = process_switches()
    with device_modes(True, CUDA, AMPERE):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "highest"
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert process_switches() == before


def test_deterministic_mode_keeps_a_workspace_config_already_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with device_modes(True, CUDA, AMPERE):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
