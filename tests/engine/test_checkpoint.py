"""The checkpoint format: atomic writes, clear errors, RNG capture."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from training_engine.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from training_engine.errors import CheckpointError


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


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
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
