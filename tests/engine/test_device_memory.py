"""Device memory known before it runs out: the estimate, the check, the rows kept on the host,
an out-of-memory reported as one, and what a run reports of its own allocations.

The devices' memory readings are stand-ins (tests/fixtures/devices.py); the trainer runs
for real on the CPU.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from training_engine import trainer
from training_engine.cancellation import CancellationToken
from training_engine.device_failures import device_errors
from training_engine.device_memory import (
    ALLOCATOR_SLACK,
    MemoryEstimate,
    estimate_memory,
    inference_chunk,
    memory_cap,
    memory_reader,
    place_rows,
)
from training_engine.device_probe import AllocatorMemory, DeviceProbe, use_probe
from training_engine.errors import (
    DeviceOutOfMemoryError,
    StrategyConfigError,
    UnsupportedDeviceOperationError,
)
from training_engine.models import build_model
from training_engine.progress import DeviceMemory, ProgressEmitter, ProgressEvent
from training_engine.strategy import strategy_to_dict
from training_engine.trainer import fit
from training_engine.windows import release_host_rows, to_device

from tests.engine.synthetic import make_dataset, make_strategy
from tests.fixtures.devices import FakeDeviceProbe, cuda_card

MIB = 1024**2
CUDA, MPS, CPU = torch.device("cuda:0"), torch.device("mps"), torch.device("cpu")


def _estimate(rows: int, model: int, batch: int, inference: int) -> MemoryEstimate:
    return MemoryEstimate(rows * MIB, model * MIB, batch * MIB, inference * MIB, 64, 256)


@pytest.mark.parametrize(
    ("batch_size", "chunk"), [(1, 4), (32, 128), (1024, 4096), (2048, 4096), (8192, 8192)]
)
def test_the_inference_chunk_is_tied_to_the_batch_size(batch_size: int, chunk: int) -> None:
    assert inference_chunk(batch_size) == chunk


def test_the_estimate_counts_rows_model_optimizer_and_activations() -> None:
    data = make_dataset(n_train=600, n_val=200, n_test=200, lookback=3, n_features=4)
    strategy = make_strategy(batch_size=32, optimizer="adam")
    model = build_model(strategy.model, data.n_features, data.lookback, 3)
    parameters = sum(p.numel() for p in model.parameters())

    estimate = estimate_memory(data, model, strategy.model, strategy.training)

    rows = data.rows.size * 4 + 1000 * (8 + 8) + 600 * 8
    assert estimate.rows_bytes == rows
    # weights, gradients, Adam's two moments, early stopping's best copy
    assert estimate.model_bytes == parameters * 4 * 5
    assert (estimate.batch_size, estimate.inference_chunk) == (32, 128)
    bigger = estimate_memory(
        data, model, strategy.model, make_strategy(batch_size=64, optimizer="adam").training
    )
    assert bigger.batch_bytes == 2 * estimate.batch_bytes


@pytest.mark.parametrize(
    ("model", "grows_with"),
    [
        ({"type": "lstm", "hidden_layers": [32]}, "lookback"),
        ({"type": "gru", "hidden_layers": [32]}, "lookback"),
        ({"type": "transformer", "hidden_layers": [16], "num_heads": 2}, "lookback"),
    ],
)
def test_sequence_models_activations_grow_with_the_lookback(
    model: dict[str, Any], grows_with: str
) -> None:
    strategy = make_strategy(model)
    sizes = []
    for lookback in (4, 16):
        data = make_dataset(n_train=64, lookback=lookback)
        network = build_model(strategy.model, data.n_features, lookback, 3)
        sizes.append(estimate_memory(data, network, strategy.model, strategy.training).batch_bytes)
    assert sizes[1] > 3 * sizes[0]


def test_a_run_that_fits_keeps_its_rows_on_the_device() -> None:
    assert place_rows(_estimate(100, 10, 50, 20), CUDA, (1024 * MIB, 80_000 * MIB)) == "device"
    assert place_rows(_estimate(100, 10, 50, 20), CPU, None) == "device"


def test_rows_that_do_not_fit_a_cuda_device_stay_on_the_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    estimate = _estimate(rows=900, model=10, batch=50, inference=20)
    with caplog.at_level("WARNING", logger="training_engine.device_memory"):
        assert place_rows(estimate, CUDA, (500 * MIB, 80_000 * MIB)) == "host"
    assert "stay in host memory" in caplog.text and "900.0 MiB" in caplog.text


@pytest.mark.parametrize("device", [CUDA, MPS])
def test_a_run_that_does_not_fit_is_refused_with_the_numbers(device: torch.device) -> None:
    estimate = _estimate(rows=900, model=300, batch=400, inference=100)
    with pytest.raises(DeviceOutOfMemoryError) as refused:
        place_rows(estimate, device, (200 * MIB, 80_000 * MIB))
    message = str(refused.value)
    needed = ALLOCATOR_SLACK * (900 + 300 + 400)
    assert f"{needed / 1024:.2f} GiB" in message and "200.0 MiB is free" in message
    assert "rows 900.0 MiB" in message and "a batch of 64 400.0 MiB" in message
    assert "lower batch_size" in message


def test_rows_are_never_kept_apart_on_mps_whose_memory_is_the_hosts() -> None:
    with pytest.raises(DeviceOutOfMemoryError):
        place_rows(_estimate(rows=900, model=10, batch=50, inference=20), MPS, (500 * MIB, 0))


def test_a_memory_fraction_caps_what_the_run_may_use() -> None:
    estimate = _estimate(rows=100, model=10, batch=50, inference=20)
    free = (80_000 * MIB, 80_000 * MIB)
    assert place_rows(estimate, CUDA, free, memory_fraction=0.5) == "device"
    with pytest.raises(DeviceOutOfMemoryError, match=r"free under memory_fraction 0\.0005 of"):
        place_rows(estimate, CUDA, free, memory_fraction=0.0005)


class _SmallCpu(DeviceProbe):
    """This machine, with a CPU that reports only ``free`` bytes for a run."""

    def __init__(self, free: int) -> None:
        self.free = free

    def available_memory(self, device: torch.device) -> tuple[int, int] | None:
        return self.free, self.free


def test_fit_refuses_a_run_too_large_for_its_device_before_the_first_batch() -> None:
    events: list[ProgressEvent] = []
    with use_probe(_SmallCpu(free=64 * 1024)), pytest.raises(DeviceOutOfMemoryError) as refused:
        fit(make_dataset(), make_strategy(batch_size=32), on_progress=events.append)
    assert "on cpu" in str(refused.value) and "batch_size" in str(refused.value)
    assert [e for e in events if e.kind == "batch"] == []


def test_an_out_of_memory_error_while_training_is_reported_as_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Exhausting a GPU cannot be done here: the first batch fails as CUDA's allocator would.
    def exhausted(*args: Any) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "_loss_step", exhausted)
    with pytest.raises(DeviceOutOfMemoryError) as failed:
        fit(make_dataset(n_train=64), make_strategy(batch_size=16))
    message = str(failed.value)
    assert message.startswith("cpu ran out of memory (CUDA out of memory. Tried to allocate")
    assert "lower batch_size (now 16)" in message


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("MPS backend out of memory (MPS allocated: 17.2 GB, other allocations: 1 GB)"),
        torch.OutOfMemoryError("CUDA out of memory"),
    ],
)
def test_out_of_memory_of_either_accelerator_becomes_a_device_out_of_memory_error(
    failure: Exception,
) -> None:
    with pytest.raises(DeviceOutOfMemoryError, match="ran out of memory"), device_errors(MPS, 64):
        raise failure


def test_an_operation_mps_lacks_is_named_with_the_remedies() -> None:
    missing = NotImplementedError(
        "The operator 'aten::_fft_r2c' is not currently implemented for the MPS device. If you "
        "want this op to be added in priority during the prototype phase of this feature, ..."
    )
    with pytest.raises(UnsupportedDeviceOperationError) as failed, device_errors(MPS, 64):
        raise missing
    message = str(failed.value)
    assert "aten::_fft_r2c" in message
    assert "PYTORCH_ENABLE_MPS_FALLBACK=1" in message and "device: cpu" in message


def test_an_operation_without_a_deterministic_kernel_names_the_setting() -> None:
    not_deterministic = RuntimeError(
        "index_add_cuda_ does not have a deterministic implementation, but you set "
        "'torch.use_deterministic_algorithms(True)'."
    )
    with (
        pytest.raises(StrategyConfigError, match="deterministic: false") as failed,
        device_errors(CUDA, 64),
    ):
        raise not_deterministic
    assert failed.value.key == "model.training.deterministic"


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(ValueError, match="unrelated"), device_errors(CUDA, 64):
        raise ValueError("unrelated")


def test_windows_of_rows_kept_on_the_host_equal_those_on_the_device() -> None:
    data = make_dataset(n_train=50, lookback=3)
    on_device, on_host = to_device(data, CPU), to_device(data, CPU, rows_on_host=True)
    index = torch.tensor([4, 0, 49, 7])
    assert torch.equal(on_host.x_train[index], on_device.x_train[index])
    assert torch.equal(on_host.x_val[0:9], on_device.x_val[0:9])
    assert on_host.x_train.device == CPU


def test_windows_gathered_on_the_host_are_copied_to_the_training_device() -> None:
    # The meta device stands in for a GPU: a tensor can be copied there, shape and all.
    data = make_dataset(n_train=50, lookback=3)
    windows = to_device(data, CPU).x_train
    remote = type(windows)(windows.rows, windows.ends, windows.lookback, torch.device("meta"))
    batch = remote[torch.tensor([1, 2, 3])]
    assert batch.device.type == "meta" and batch.shape == (3, 3, 4)


def test_releasing_the_host_rows_frees_them_and_keeps_the_shapes() -> None:
    data = make_dataset(n_train=50)
    rows = weakref.ref(data.rows.base if data.rows.base is not None else data.rows)
    shape, n_features = data.rows.shape, data.n_features
    release_host_rows(data)
    gc.collect()
    assert rows() is None
    assert data.rows.shape == shape and data.n_features == n_features
    assert data.rows.strides == (0, 0) and not np.any(data.rows)


def test_a_run_reports_what_it_holds_on_its_accelerator() -> None:
    held = AllocatorMemory(allocated_bytes=3 * MIB, peak_allocated_bytes=5 * MIB, reserved_bytes=8)
    probe = FakeDeviceProbe([cuda_card(0), cuda_card(1, uuid="abc")], allocated=held)
    read = memory_reader(torch.device("cuda:1"), probe)
    assert read is not None
    assert read() == DeviceMemory("cuda:1", "abc", 3 * MIB, 5 * MIB, 8)
    assert memory_reader(CPU, probe) is None


def test_progress_events_carry_the_device_memory_of_the_run() -> None:
    memory = DeviceMemory("mps", None, 1, None, 2)
    events: list[ProgressEvent] = []
    emitter = ProgressEmitter(
        events.append, total_epochs=1, total_batches=2, device_memory=lambda: memory
    )
    emitter.started(1, 0)
    emitter.batch(1, 1, torch.tensor(0.5), 0.01)
    assert [event.device_memory for event in events] == [memory, memory]


def test_validation_and_test_inference_run_in_chunks_tied_to_the_batch_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks: list[int] = []
    real = trainer.batched_logits

    def recording(model: torch.nn.Module, x: Any, batch_size: int = 4096) -> torch.Tensor:
        chunks.append(batch_size)
        return real(model, x, batch_size)

    monkeypatch.setattr(trainer, "batched_logits", recording)
    fit(make_dataset(n_train=64), make_strategy(epochs=1, batch_size=8))
    assert chunks and set(chunks) == {inference_chunk(8)} == {32}


def test_a_runs_memory_cap_is_set_for_the_run_and_the_previous_one_put_back() -> None:
    probe = FakeDeviceProbe([cuda_card(0)])
    with memory_cap(CUDA, 0.3, probe):
        assert probe.memory_fraction(CUDA) == 0.3
    assert probe.memory_fractions == [("cuda:0", 0.3), ("cuda:0", 1.0)]
    with memory_cap(CUDA, None, probe), memory_cap(CPU, 0.5, probe):
        pass
    assert len(probe.memory_fractions) == 2


def test_memory_fraction_is_written_only_when_set() -> None:
    assert make_strategy(memory_fraction=0.25).training.memory_fraction == 0.25
    assert strategy_to_dict(make_strategy(memory_fraction=0.25))["training"]["memory_fraction"]
    assert "memory_fraction" not in strategy_to_dict(make_strategy())["training"]


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, "half", True])
def test_a_memory_fraction_outside_zero_to_one_is_refused(bad: Any) -> None:
    with pytest.raises(StrategyConfigError, match="memory_fraction"):
        make_strategy(memory_fraction=bad)


def test_a_checkpoint_resumes_under_another_memory_fraction(tmp_path: Path) -> None:
    data, checkpoint = make_dataset(n_train=96), tmp_path / "run.ckpt"
    stop = CancellationToken()

    def stop_after_first_batch(event: ProgressEvent) -> None:
        if event.kind == "batch":
            stop.cancel()

    first = fit(
        data,
        make_strategy(epochs=2),
        checkpoint_path=checkpoint,
        cancel=stop,
        on_progress=stop_after_first_batch,
    )
    assert first.result.status == "cancelled"
    resumed = fit(data, make_strategy(epochs=2, memory_fraction=0.5), resume_from=checkpoint)
    assert resumed.result.status == "completed"
