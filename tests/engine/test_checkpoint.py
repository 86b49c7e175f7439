"""The checkpoint format: atomic writes, clear errors, RNG capture, older files resumed."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from training_engine.checkpoint import (
    CheckpointPosition,
    RunState,
    capture_rng_state,
    load_checkpoint,
    read_position,
    restore_rng_state,
    save_checkpoint,
)
from training_engine.errors import CheckpointError
from training_engine.models import build_model
from training_engine.optim import EarlyStopping, build_optimizer, build_scheduler
from training_engine.progress import EpochMetrics
from training_engine.trainer import fit

from tests.engine.synthetic import make_dataset, make_strategy
from tests.fixtures.devices import FakeDeviceProbe, cuda_card

# Written by the trainer as of commit 0a71f04, before RunState: ``fit`` of this strategy on
# ``make_dataset(n_train=160)`` (5 batches an epoch), cancelled after batch 2 of epoch 2,
# inside an accumulation group (so it holds gradients), early stopping keeping best weights.
CHECKPOINT_V1 = Path(__file__).parent / "data" / "checkpoint_format_v1.pt"
CHECKPOINT_V1_TRAINING: dict[str, Any] = {
    "epochs": 3,
    "gradient_accumulation_steps": 3,
    "scheduler": "cosine",
    "early_stopping": {"enabled": True, "patience": 5, "min_delta": 0.0},
}


def test_saved_checkpoint_loads_back_with_tensors_and_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "run" / "ck.pt"
    weights = torch.arange(6.0).reshape(2, 3)
    save_checkpoint(path, {"model": {"w": weights}, "epoch": 3, "history": [{"loss": 0.5}]})
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], weights)
    assert state["epoch"] == 3 and state["history"] == [{"loss": 0.5}]
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]


def test_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temp_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises((AttributeError, TypeError, RuntimeError)):
        # A local function cannot be pickled: torch.save fails half way through.
        save_checkpoint(path, {"epoch": 2, "bad": lambda: None})
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_missing_checkpoint_error_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"not found: .*absent\.pt"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize(
    "content",
    # the last: the unpickler raises KeyError (an unknown memo slot) on it
    [b"", b"not a checkpoint at all", b"PK\x03\x04garbage", b"half a checkpoint"],
)
def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ck.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(1000)}})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_file_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a training-engine checkpoint"):
        load_checkpoint(path)


def test_rng_state_survives_a_checkpoint_round_trip(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"rng": capture_rng_state()})
    expected = (random.random(), np.random.normal(size=3), torch.rand(3))
    restore_rng_state(load_checkpoint(path)["rng"])
    again = (random.random(), np.random.normal(size=3), torch.rand(3))
    assert expected[0] == again[0]
    assert np.array_equal(expected[1], again[1])
    assert torch.equal(expected[2], again[2])


def _state(seed: int) -> torch.Tensor:
    return torch.Generator().manual_seed(seed).get_state()


@pytest.mark.parametrize("device", ["mps", "cuda:1"])
def test_the_training_devices_generator_is_checkpointed_and_restored(
    tmp_path: Path, device: str
) -> None:
    # Dropout on an accelerator draws from that device's generator, not the CPU's.
    saving = FakeDeviceProbe([cuda_card(0), cuda_card(1)], mps=True)
    saving.set_rng_state(torch.device(device), _state(7))
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"rng": capture_rng_state(torch.device(device), saving)})

    resuming = FakeDeviceProbe([cuda_card(0), cuda_card(1)], mps=True)
    restore_rng_state(load_checkpoint(path)["rng"], torch.device(device), resuming)

    assert torch.equal(resuming.rng_states[device], _state(7))


def test_a_cuda_run_resumes_on_a_machine_with_fewer_gpus(tmp_path: Path) -> None:
    saving = FakeDeviceProbe([cuda_card(0), cuda_card(1), cuda_card(2)])
    saving.set_rng_state(torch.device("cuda:2"), _state(3))
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"rng": capture_rng_state(torch.device("cuda:2"), saving)})
    assert len(load_checkpoint(path)["rng"]["cuda"]) == 3

    # The resuming worker sees one card (CUDA_VISIBLE_DEVICES): it is cuda:0 there.
    one_gpu = FakeDeviceProbe([cuda_card(0)])
    restore_rng_state(load_checkpoint(path)["rng"], torch.device("cuda:0"), one_gpu)

    assert torch.equal(one_gpu.rng_states["cuda:0"], _state(3))


def test_a_checkpoint_without_the_device_slot_restores_the_gpus_both_machines_have() -> None:
    # As written before the slot existed: one state per GPU the saving process saw.
    state = capture_rng_state()
    state["cuda"] = [_state(1), _state(2)]
    one_gpu = FakeDeviceProbe([cuda_card(0)])
    restore_rng_state(state, torch.device("cuda:0"), one_gpu)
    assert list(one_gpu.rng_states) == ["cuda:0"]
    assert torch.equal(one_gpu.rng_states["cuda:0"], _state(1))


def test_a_cpu_run_writes_no_device_slot() -> None:
    assert "device" not in capture_rng_state(torch.device("cpu"), FakeDeviceProbe(mps=True))


def test_a_checkpoint_of_one_accelerator_resumed_on_another_keeps_its_own_generator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mac = FakeDeviceProbe(mps=True)
    state = capture_rng_state(torch.device("mps"), mac)
    linux = FakeDeviceProbe([cuda_card(0)])
    with caplog.at_level("WARNING", logger="training_engine.checkpoint"):
        restore_rng_state(state, torch.device("cuda:0"), linux)
    assert linux.rng_states == {}
    assert "written on mps resumes on cuda:0" in caplog.text


def _assert_same_state(left: Any, right: Any, where: str = "checkpoint") -> None:
    if isinstance(left, torch.Tensor):
        assert isinstance(right, torch.Tensor) and torch.equal(left, right), where
    elif isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), where
        for key in left:
            _assert_same_state(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list | tuple):
        assert isinstance(right, list | tuple) and len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            _assert_same_state(a, b, f"{where}[{index}]")
    else:
        assert left == right, where


def test_checkpoint_of_the_format_before_run_state_loads_into_a_run_state_completely() -> None:
    written = load_checkpoint(CHECKPOINT_V1)
    strategy = make_strategy(**CHECKPOINT_V1_TRAINING)
    settings = strategy.training
    model = build_model(strategy.model, n_features=4, lookback=3)
    optimizer = build_optimizer(settings, model.parameters())
    run = RunState(
        fingerprint=written["fingerprint"],
        model=model,
        optimizer=optimizer,
        schedule=build_scheduler(settings, optimizer, 2),
        scaler=None,
        early_stopping=EarlyStopping.from_settings(settings),
        loss_sum=torch.zeros(()),
        epoch=7,
        batch=9,
        stopped_early=True,
    )

    run.load_state_dict(written)

    assert (run.epoch, run.batch, run.stopped_early) == (1, 2, False)
    assert run.history == [EpochMetrics(**written["history"][0])]
    # Written back, it is the same file content: no key was dropped, renamed or added.
    del written["format_version"]
    _assert_same_state(run.state_dict(), written)


def test_checkpoint_of_the_format_before_run_state_resumes_to_the_end_of_the_run(
    tmp_path: Path,
) -> None:
    written = load_checkpoint(CHECKPOINT_V1)
    checkpoint = tmp_path / "resumed.pt"

    resumed = fit(
        make_dataset(n_train=160),
        make_strategy(**CHECKPOINT_V1_TRAINING),
        checkpoint_path=checkpoint,
        resume_from=CHECKPOINT_V1,
    )

    assert resumed.result.status == "completed"
    assert [m.epoch for m in resumed.result.history] == [1, 2, 3]
    assert resumed.result.history[0] == EpochMetrics(**written["history"][0])
    assert load_checkpoint(checkpoint).keys() == written.keys()


def test_read_position_says_where_a_checkpointed_run_continues(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.pt"
    fit(make_dataset(n_train=160), make_strategy(epochs=2), checkpoint_path=checkpoint)

    # Cancelled inside epoch 2 (0-based 1) after its batch 2; then a run that ended.
    assert read_position(CHECKPOINT_V1) == CheckpointPosition(epoch=1, batch=2)
    assert read_position(checkpoint) == CheckpointPosition(epoch=2, batch=0)


def test_read_position_refuses_a_checkpoint_a_resume_could_not_restore(tmp_path: Path) -> None:
    complete = load_checkpoint(CHECKPOINT_V1)
    del complete["format_version"]
    without_optimizer = tmp_path / "no_optimizer.pt"
    save_checkpoint(without_optimizer, {k: v for k, v in complete.items() if k != "optimizer"})
    without_weights = tmp_path / "no_weights.pt"
    save_checkpoint(without_weights, {**complete, "model": {}})
    bad_position = tmp_path / "bad_position.pt"
    save_checkpoint(bad_position, {**complete, "epoch": -1})
    torn = tmp_path / "torn.pt"
    torn.write_bytes(CHECKPOINT_V1.read_bytes()[:1000])

    with pytest.raises(CheckpointError, match=r"no_optimizer\.pt lacks optimizer"):
        read_position(without_optimizer)
    with pytest.raises(CheckpointError, match="holds no model weights"):
        read_position(without_weights)
    with pytest.raises(CheckpointError, match=r"no valid position \(epoch -1, batch 2\)"):
        read_position(bad_position)
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        read_position(torn)
    with pytest.raises(CheckpointError, match="not found"):
        read_position(tmp_path / "absent.pt")
