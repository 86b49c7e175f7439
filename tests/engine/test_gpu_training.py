"""Training on a real GPU: every model in every precision, stop-and-resume compared bit for
bit, compile, memory refused and reported. CUDA tests are marked ``gpu``, MPS tests ``mps``;
each set runs where its device exists and is skipped elsewhere (tests/conftest.py).

What is bit-identical where is written in docs/gpu.md; these tests are its evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from training_engine.checkpoint import load_checkpoint, save_checkpoint
from training_engine.device_probe import DeviceProbe, use_probe
from training_engine.errors import DeviceOutOfMemoryError
from training_engine.progress import ProgressEvent
from training_engine.trainer import fit

from tests.engine.resume_cases import stop_and_resume
from tests.engine.synthetic import make_dataset, make_strategy
from tests.fixtures.weights import differing_weights

MODELS = [
    pytest.param({}, id="mlp"),
    pytest.param({"type": "lstm", "hidden_layers": [32]}, id="lstm"),
    pytest.param({"type": "gru", "hidden_layers": [32], "num_layers": 2}, id="gru"),
    pytest.param({"type": "transformer", "hidden_layers": [16], "num_heads": 2}, id="transformer"),
]
# Deterministic, no early stopping: the stopped run must replay exactly what the other did.
EXACT = {"deterministic": True, "early_stopping": {"enabled": False}, "epochs": 2}


def _trains(model: dict[str, Any], device: str, precision: str) -> None:
    strategy = make_strategy(model, epochs=3, device=device, mixed_precision=precision)
    result = fit(make_dataset(n_train=320, lookback=3), strategy).result
    assert result.status == "completed"
    assert result.device.startswith(device)
    losses = [epoch.train_loss for epoch in result.history]
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert losses[-1] < losses[0], losses


# ---------------------------------------------------------------- CUDA


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["off", "bf16", "fp16"])
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_cuda_in_every_precision(
    model: dict[str, Any], precision: str
) -> None:
    _trains(model, "cuda", precision)


@pytest.mark.gpu
@pytest.mark.parametrize("model", MODELS)
def test_a_deterministic_cuda_run_stopped_and_resumed_is_bit_identical(
    tmp_path: Path, model: dict[str, Any]
) -> None:
    strategy = make_strategy(model, device="cuda", mixed_precision="off", **EXACT)
    uninterrupted, resumed = stop_and_resume(make_dataset(n_train=320), strategy, tmp_path, 2, 4)
    assert resumed.result.status == "completed"
    assert differing_weights(uninterrupted.model, resumed.model) == {}


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_deterministic_mixed_precision_cuda_run_resumes_bit_identical(
    tmp_path: Path, precision: str
) -> None:
    strategy = make_strategy(device="cuda", mixed_precision=precision, **EXACT)
    uninterrupted, resumed = stop_and_resume(make_dataset(n_train=320), strategy, tmp_path, 2, 4)
    assert differing_weights(uninterrupted.model, resumed.model) == {}


@pytest.mark.gpu
def test_a_cuda_checkpoint_from_a_machine_with_more_gpus_resumes(tmp_path: Path) -> None:
    data, strategy = make_dataset(n_train=320), make_strategy(device="cuda", **EXACT)
    uninterrupted, _ = stop_and_resume(data, strategy, tmp_path, 1, 3)
    # As an older engine wrote it on a two-GPU machine: no device slot, two CUDA states.
    state = load_checkpoint(tmp_path / "stopped.pt")
    rng = state["rng"]
    device_state = rng.pop("device")["state"]
    rng["cuda"] = [device_state, device_state.clone()]
    del state["format_version"]
    save_checkpoint(tmp_path / "two_gpus.pt", state)
    resumed = fit(data, strategy, resume_from=tmp_path / "two_gpus.pt")
    assert differing_weights(uninterrupted.model, resumed.model) == {}


@pytest.mark.gpu
def test_compile_on_cuda_trains_without_falling_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="training_engine.trainer"):
        result = fit(make_dataset(n_train=320), make_strategy(device="cuda", compile=True)).result
    assert result.status == "completed"
    assert "torch.compile failed" not in caplog.text


@pytest.mark.gpu
def test_a_cuda_run_beyond_its_memory_fraction_is_refused_before_training() -> None:
    strategy = make_strategy(device="cuda", memory_fraction=1e-6)
    with pytest.raises(DeviceOutOfMemoryError, match="free under memory_fraction 1e-06"):
        fit(make_dataset(n_train=320), strategy)
    # The cap was the run's alone: the next run has the whole card again.
    assert fit(make_dataset(n_train=64), make_strategy(device="cuda")).result.status == "completed"


class _NoRoomForRows(DeviceProbe):
    """The real CUDA device, reporting just enough free memory for all but the rows."""

    def available_memory(self, device: torch.device) -> tuple[int, int] | None:
        return 300 * 1024**2, 300 * 1024**2


@pytest.mark.gpu
def test_rows_kept_on_the_host_train_exactly_as_rows_on_the_gpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 200k rows x 64 features (51 MiB) and a batch that needs more than the remainder.
    data = make_dataset(n_train=200_000, n_val=1000, n_test=1000, lookback=1, n_features=64)
    strategy = make_strategy(device="cuda", batch_size=4096, epochs=1, deterministic=True)
    on_gpu = fit(data, strategy).model
    with use_probe(_NoRoomForRows()), caplog.at_level("WARNING"):
        on_host = fit(data, strategy).model
    assert "stay in host memory" in caplog.text
    assert differing_weights(on_gpu, on_host) == {}


@pytest.mark.gpu
def test_an_out_of_memory_during_training_is_reported_as_one() -> None:
    class Roomy(DeviceProbe):
        def available_memory(self, device: torch.device) -> tuple[int, int] | None:
            return 10**15, 10**15  # lies, so the check passes and the allocator decides

    wide = make_strategy({"hidden_layers": [65536, 65536]}, device="cuda", memory_fraction=0.02)
    with use_probe(Roomy()), pytest.raises(DeviceOutOfMemoryError, match="ran out of memory"):
        fit(make_dataset(n_train=320), wide)


@pytest.mark.gpu
def test_progress_events_report_the_runs_allocations_on_its_card() -> None:
    events: list[ProgressEvent] = []
    fit(make_dataset(n_train=320), make_strategy(device="cuda"), on_progress=events.append)
    reported = [e.device_memory for e in events if e.kind in {"batch", "epoch"}]
    assert reported and all(memory is not None for memory in reported)
    first = reported[0]
    assert first is not None and first.device == "cuda:0" and first.uuid
    assert first.allocated_bytes > 0 and (first.peak_allocated_bytes or 0) >= first.allocated_bytes


# ---------------------------------------------------------------- MPS


@pytest.mark.mps
@pytest.mark.parametrize("precision", ["off", "fp16", "bf16"])
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_mps_in_every_precision(
    model: dict[str, Any], precision: str
) -> None:
    _trains(model, "mps", precision)


@pytest.mark.mps
@pytest.mark.parametrize("model", MODELS)
def test_a_deterministic_mps_run_stopped_and_resumed_is_bit_identical(
    tmp_path: Path, model: dict[str, Any]
) -> None:
    strategy = make_strategy(model, device="mps", mixed_precision="off", **EXACT)
    uninterrupted, resumed = stop_and_resume(make_dataset(n_train=320), strategy, tmp_path, 2, 4)
    assert differing_weights(uninterrupted.model, resumed.model) == {}


@pytest.mark.mps
def test_auto_trains_a_recurrent_model_on_the_cpu_of_a_mac() -> None:
    result = fit(make_dataset(n_train=64), make_strategy({"type": "lstm"}, device="auto")).result
    assert result.device == "cpu"


@pytest.mark.mps
def test_an_mps_run_beyond_its_memory_fraction_is_refused_before_training() -> None:
    with pytest.raises(DeviceOutOfMemoryError, match="memory_fraction"):
        fit(make_dataset(n_train=320), make_strategy(device="mps", memory_fraction=1e-6))


@pytest.mark.mps
def test_progress_events_report_the_runs_allocations_on_mps() -> None:
    events: list[ProgressEvent] = []
    fit(make_dataset(n_train=320), make_strategy(device="mps"), on_progress=events.append)
    reported = [e.device_memory for e in events if e.kind == "epoch"]
    assert reported and all(m is not None and m.device == "mps" for m in reported)
