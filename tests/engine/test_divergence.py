"""A run whose loss becomes NaN or infinite stops at once with an error that says so."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from training_engine.cancellation import CancellationToken
from training_engine.checkpoint import load_checkpoint
from training_engine.errors import NonFiniteLossError
from training_engine.progress import ProgressEvent
from training_engine.trainer import fit

from tests.engine.synthetic import make_dataset, make_strategy

torch.set_num_threads(1)


def test_a_learning_rate_that_diverges_fails_in_the_first_epoch() -> None:
    events: list[ProgressEvent] = []

    with pytest.raises(NonFiniteLossError, match=r"became nan in epoch 1 .*last finite loss: none"):
        fit(
            make_dataset(),
            make_strategy(epochs=3, learning_rate=1e20),
            on_progress=events.append,
        )

    assert [event.kind for event in events].count("epoch") == 0


def test_non_finite_data_after_a_good_epoch_names_the_epoch_and_keeps_its_checkpoint(
    tmp_path: Path,
) -> None:
    data = make_dataset()
    checkpoint = tmp_path / "run.ckpt"
    token = CancellationToken()

    def stop_in_epoch_2(event: ProgressEvent) -> None:
        if event.kind == "batch" and event.epoch == 2:
            token.cancel()

    good = fit(
        data,
        make_strategy(epochs=3),
        checkpoint_path=checkpoint,
        cancel=token,
        on_progress=stop_in_epoch_2,
    )
    first_loss = good.result.history[0].train_loss
    saved = load_checkpoint(checkpoint)
    # The rest of epoch 2 meets an infinite input value.
    data.rows[data.train_ends - data.lookback + 1, 0] = np.inf  # each train window's first row

    with pytest.raises(NonFiniteLossError) as raised:
        fit(data, make_strategy(epochs=3), checkpoint_path=checkpoint, resume_from=checkpoint)

    assert good.result.status == "cancelled"
    assert raised.value.epoch == 2
    assert raised.value.last_finite == pytest.approx(first_loss)
    assert f"{first_loss:.6g}" in str(raised.value)
    assert "in epoch 2" in str(raised.value)
    # The last good checkpoint is untouched.
    after = load_checkpoint(checkpoint)
    assert (after["epoch"], after["batch"]) == (saved["epoch"], saved["batch"]) == (1, 1)
    assert math.isfinite(first_loss)


def test_a_batch_loss_read_for_an_event_stops_the_run_within_the_epoch() -> None:
    data = make_dataset()
    for offset in range(data.lookback):  # every row of every train window: no finite batch
        data.rows[data.train_ends - offset] = np.inf
    events: list[ProgressEvent] = []

    with pytest.raises(NonFiniteLossError, match="training loss became nan in epoch 1"):
        # batch_event_interval 0: every batch loss is read, so the first one stops it.
        fit(data, make_strategy(epochs=2), on_progress=events.append)

    batches = [event for event in events if event.kind == "batch"]
    assert len(batches) == 1
