"""The training loop: cancellation, progress, checkpoint/resume and optimisation settings."""

from __future__ import annotations

import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from training_engine.cancellation import CancellationToken
from training_engine.device_probe import use_probe
from training_engine.errors import CheckpointError, DataError, DeviceUnavailableError
from training_engine.job import TrainingJob
from training_engine.optim import build_optimizer, build_scheduler
from training_engine.progress import EPOCH_METRICS, EpochMetrics, ProgressEvent
from training_engine.strategy import load_strategy
from training_engine.strategy.names import OPTIMIZERS, SCHEDULERS
from training_engine.trainer import fit, train
from training_engine.windows import gather_windows

from tests.engine.resume_cases import cancel_at, stop_and_resume
from tests.engine.synthetic import make_dataset, make_strategy
from tests.fixtures.devices import FakeDeviceProbe
from tests.fixtures.weights import assert_same_weights

torch.set_num_threads(1)


RESUME_CASES = [
    pytest.param({}, {"epochs": 3}, id="mlp-adam-dropout"),
    pytest.param(
        {},
        {"epochs": 3, "gradient_accumulation_steps": 3, "scheduler": "cosine", "optimizer": "sgd"},
        id="mlp-sgd-accumulation-cosine",
    ),
    pytest.param(
        {"type": "gru", "num_layers": 2},
        {"epochs": 2, "scheduler": "onecycle", "optimizer": "adamw"},
        id="gru-onecycle",
    ),
    pytest.param(
        {"type": "transformer", "num_heads": 2},
        {"epochs": 2, "scheduler": "plateau", "optimizer": "muon"},
        id="transformer-muon-plateau",
    ),
]


@pytest.mark.parametrize(("model", "training"), RESUME_CASES)
def test_run_stopped_mid_epoch_and_resumed_ends_bit_identical_to_uninterrupted_run(
    tmp_path: Path, model: dict[str, Any], training: dict[str, Any]
) -> None:
    # 320 samples / 32 = 10 batches per epoch: stop inside epoch 2 (and an accumulation group).
    uninterrupted, resumed = stop_and_resume(
        make_dataset(n_train=320), make_strategy(model, **training), tmp_path, 2, 4
    )

    assert resumed.result.status == "completed"
    assert_same_weights(uninterrupted.model, resumed.model)

    def losses(outcome: Any) -> list[tuple[float, float, float, float]]:
        return [
            (h.train_loss, h.val_loss, h.val_accuracy, h.learning_rate)
            for h in outcome.result.history
        ]

    assert losses(resumed) == losses(uninterrupted)


def test_run_stopped_after_last_batch_of_epoch_resumes_bit_identical(tmp_path: Path) -> None:
    data = make_dataset(n_train=320)
    strategy = make_strategy(epochs=2)
    uninterrupted = fit(data, strategy)
    token = CancellationToken()
    checkpoint = tmp_path / "ck.pt"
    fit(
        data,
        strategy,
        checkpoint_path=checkpoint,
        cancel=token,
        on_progress=cancel_at(token, 1, 10),
    )
    resumed = fit(data, strategy, checkpoint_path=checkpoint, resume_from=checkpoint)
    assert_same_weights(uninterrupted.model, resumed.model)


def test_cancel_from_another_thread_stops_within_one_batch_and_checkpoint_resumes(
    tmp_path: Path,
) -> None:
    data = make_dataset(n_train=4000)
    strategy = make_strategy(epochs=3, batch_size=8)
    token = CancellationToken()
    running = threading.Event()
    batches_after_cancel: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.kind == "batch":
            running.set()
            if token.is_set():
                batches_after_cancel.append(event.batch)

    def cancel_soon() -> None:
        running.wait(timeout=60)
        token.cancel("test")

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    checkpoint = tmp_path / "ck.pt"
    outcome = fit(data, strategy, checkpoint_path=checkpoint, cancel=token, on_progress=on_progress)
    canceller.join()

    assert outcome.result.status == "cancelled"
    # The batch in flight when cancel() ran may finish; no further batch may start.
    assert len(batches_after_cancel) <= 1
    assert outcome.result.checkpoint_path == checkpoint and checkpoint.is_file()
    resumed = fit(
        data,
        make_strategy(epochs=3, batch_size=8),
        checkpoint_path=checkpoint,
        resume_from=checkpoint,
    )
    assert resumed.result.status == "completed"
    assert resumed.result.epochs_completed == 3


def test_progress_reports_started_batches_epochs_and_finished_in_order() -> None:
    events: list[ProgressEvent] = []
    data = make_dataset(n_train=96)
    fit(data, make_strategy(epochs=2), on_progress=events.append)

    phases = [e.phase for e in events if e.kind == "phase"]
    events = [e for e in events if e.kind != "phase"]
    kinds = [e.kind for e in events]
    assert phases == ["training", "evaluating"]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("batch") == 2 * 3  # 96 samples / 32 per batch, 2 epochs
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2]
    assert all(e.val_loss is not None and e.learning_rate == pytest.approx(0.01) for e in epochs)
    assert epochs[-1].eta_seconds == 0
    assert events[-2].percent == 100.0


def test_each_epoch_event_carries_every_epoch_metric_of_its_history_row() -> None:
    events: list[ProgressEvent] = []
    outcome = fit(make_dataset(n_train=96), make_strategy(epochs=2), on_progress=events.append)

    epochs = [e for e in events if e.kind == "epoch"]
    assert tuple(f.name for f in fields(EpochMetrics))[1:] == EPOCH_METRICS
    assert len(epochs) == len(outcome.result.history) == 2
    for event, row in zip(epochs, outcome.result.history, strict=True):
        assert event.epoch == row.epoch
        assert {name: getattr(event, name) for name in EPOCH_METRICS} == {
            name: getattr(row, name) for name in EPOCH_METRICS
        }


def test_batch_event_interval_thins_batch_events_but_keeps_each_epochs_last() -> None:
    events: list[ProgressEvent] = []
    data = make_dataset(n_train=320)  # 10 batches an epoch
    fit(data, make_strategy(epochs=2), on_progress=events.append, batch_event_interval=3600.0)

    batches = [(e.epoch, e.batch) for e in events if e.kind == "batch"]
    # The first batch of the run, then only the last batch of each epoch.
    assert batches == [(1, 1), (1, 10), (2, 10)]


def test_fit_beats_majority_baseline_on_planted_structure() -> None:
    outcome = fit(make_dataset(), make_strategy(epochs=4))
    result = outcome.result
    assert result.test_metrics is not None and result.baseline_metrics is not None
    assert result.test_metrics.accuracy > result.baseline_metrics.accuracy + 0.2
    assert result.test_metrics.macro_f1 > result.baseline_metrics.macro_f1


def test_early_stopping_stops_when_validation_loss_stops_improving() -> None:
    # SGD with no momentum and a tiny rate: the loss barely moves, so min_delta is never met.
    strategy = make_strategy(
        epochs=10,
        optimizer="sgd",
        momentum=0.0,
        learning_rate=1e-9,
        early_stopping={"enabled": True, "patience": 2, "min_delta": 0.5},
    )
    result = fit(make_dataset(n_train=64), strategy).result
    assert result.stopped_early
    assert result.epochs_completed == 3
    assert result.status == "completed"


def test_model_returned_after_early_stopping_has_the_best_epochs_weights() -> None:
    # A small train part and a large rate overfit: validation loss turns up after a while.
    overfit = {
        "learning_rate": 0.05,
        "early_stopping": {"enabled": True, "patience": 30, "min_delta": 0.0},
    }
    data = make_dataset(n_train=48)
    long_run = fit(data, make_strategy(epochs=25, **overfit))
    val_losses = [m.val_loss for m in long_run.result.history]
    best_epoch = val_losses.index(min(val_losses)) + 1
    assert best_epoch < len(val_losses), "the run must overfit for this test to mean anything"

    # The same run cut at the best epoch ends with exactly those weights.
    short_run = fit(data, make_strategy(epochs=best_epoch, **overfit))

    assert_same_weights(long_run.model, short_run.model)


def test_resume_from_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    data = make_dataset(n_train=64)
    checkpoint = tmp_path / "ck.pt"
    fit(data, make_strategy(epochs=1), checkpoint_path=checkpoint)
    other = make_strategy({"hidden_layers": [32]}, epochs=1)
    with pytest.raises(CheckpointError, match="different run"):
        fit(data, other, resume_from=checkpoint)


def test_resume_from_missing_checkpoint_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=r"nope\.pt"):
        fit(make_dataset(n_train=64), make_strategy(epochs=1), resume_from=missing)


def test_empty_validation_part_is_a_data_error() -> None:
    data = make_dataset(n_val=0)
    with pytest.raises(DataError, match="val part is empty"):
        fit(data, make_strategy(epochs=1))


def test_unavailable_device_is_refused_before_training() -> None:
    with use_probe(FakeDeviceProbe()), pytest.raises(DeviceUnavailableError, match="cuda"):
        fit(make_dataset(n_train=64), make_strategy(epochs=1, device="cuda"))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_reduces_training_loss(optimizer: str) -> None:
    strategy = make_strategy(epochs=3, optimizer=optimizer, learning_rate=0.02)
    history = fit(make_dataset(n_train=320), strategy).result.history
    assert history[-1].train_loss < history[0].train_loss


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_a_strategy_may_name_is_built(scheduler: str) -> None:
    settings = make_strategy(scheduler=scheduler).training
    optimizer = build_optimizer(settings, nn.Linear(2, 1).parameters())
    assert build_scheduler(settings, optimizer, steps_per_epoch=4).name == scheduler


def test_deterministic_mode_is_restored_after_the_run() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    fit(make_dataset(n_train=64), make_strategy(epochs=1, deterministic=True))
    assert torch.are_deterministic_algorithms_enabled() == before


def test_failing_torch_compile_falls_back_to_eager_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A compiler failure cannot be produced cheaply for real: stand in for the backend.
    def broken_compile(model: torch.nn.Module) -> Any:
        raise RuntimeError("no working C++ compiler")

    monkeypatch.setattr(torch, "compile", broken_compile)
    with caplog.at_level("WARNING", logger="training_engine.trainer"):
        result = fit(make_dataset(n_train=64), make_strategy(epochs=1, compile=True)).result
    assert result.status == "completed"
    assert "torch.compile failed" in caplog.text and "no working C++ compiler" in caplog.text


def test_compile_failing_at_the_first_backward_pass_falls_back_to_eager_exactly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The forward pass compiles and the backward graph does not: compilers fail late too.
    def compile_without_backward(model: torch.nn.Module) -> Any:
        def forward(x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = model(x)

            def fail(grad: torch.Tensor) -> torch.Tensor:
                raise RuntimeError("backward graph did not compile")

            out.register_hook(fail)
            return out

        return forward

    dataset, settings = make_dataset(n_train=100), {"epochs": 2, "batch_size": 32}
    eager = fit(dataset, make_strategy(**settings)).result
    monkeypatch.setattr(torch, "compile", compile_without_backward)
    with caplog.at_level("WARNING", logger="training_engine.trainer"):
        fallen_back = fit(dataset, make_strategy(compile=True, **settings)).result
    assert "torch.compile failed" in caplog.text and "backward graph" in caplog.text
    # The trial steps left no trace: dropout draws and weights are an eager run's.
    assert fallen_back.history and [(m.train_loss, m.val_loss) for m in fallen_back.history] == [
        (m.train_loss, m.val_loss) for m in eager.history
    ]


def test_compile_that_works_trains_through_the_compiled_model_from_the_first_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def counting_compile(model: torch.nn.Module) -> Any:
        def forward(x: torch.Tensor) -> torch.Tensor:
            calls.append(x.shape[0])
            return model(x)  # type: ignore[no-any-return]

        return forward

    monkeypatch.setattr(torch, "compile", counting_compile)
    dataset = make_dataset(n_train=100)
    compiled = fit(dataset, make_strategy(compile=True, epochs=1, batch_size=32)).result
    eager = fit(dataset, make_strategy(epochs=1, batch_size=32)).result
    # The trial steps at both batch shapes (32 and the last 4), then the epoch's 4 batches.
    assert calls == [32, 4, 32, 32, 32, 4]
    assert compiled.history[0].train_loss == eager.history[0].train_loss


def test_stop_requested_before_training_starts_returns_cancelled_without_a_batch(
    tmp_path: Path, strategies_dir: Path, sample_data_dir: Path
) -> None:
    token = CancellationToken()
    token.cancel()
    events: list[ProgressEvent] = []
    job = TrainingJob(
        strategy=load_strategy(strategies_dir / "momentum_mlp.yaml"),
        data_dir=sample_data_dir,
        models_dir=tmp_path / "models",
        checkpoint_path=tmp_path / "run.ckpt",
    )

    result = train(job, cancel=token, on_progress=events.append)

    assert result.status == "cancelled"
    assert result.epochs_completed == 0
    assert result.model_path is None
    assert events == []
    assert not (tmp_path / "run.ckpt").exists()
    assert not (tmp_path / "models").exists()


def test_without_early_stopping_the_best_epoch_by_validation_loss_is_kept() -> None:
    # A tiny train part and a large rate overfit: the validation loss rises after a while.
    data = make_dataset(n_train=48, n_val=200)
    strategy = make_strategy(
        epochs=12, learning_rate=0.05, early_stopping={"enabled": False}, batch_size=8
    )
    outcome = fit(data, strategy)
    history = outcome.result.history
    losses = [m.val_loss for m in history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert best < len(losses) - 1, "the planted run should overfit"
    weights = outcome.result.evaluation["weights"]
    assert weights["epoch"] == history[best].epoch and weights["early_stopping"] is False
    model = outcome.model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(gather_windows(data, "val")))
    # The validation loss is class-weighted as training is (class_weights: balanced).
    class_weight = torch.tensor(outcome.result.evaluation["loss"]["weights"])
    y_val = torch.from_numpy(data.y_val)
    val_loss = torch.nn.functional.cross_entropy(logits, y_val, weight=class_weight)
    assert val_loss.item() == pytest.approx(losses[best], rel=1e-5)


def test_the_log_has_a_line_per_epoch_checkpoint_stop_and_resume(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 320 samples / 32 = 10 batches per epoch; stopped after batch 4 of epoch 2.
    data, strategy = make_dataset(n_train=320), make_strategy(epochs=3)
    token, checkpoint = CancellationToken(), tmp_path / "run.pt"
    with caplog.at_level("INFO", logger="training_engine.trainer"):
        fit(
            data,
            strategy,
            checkpoint_path=checkpoint,
            cancel=token,
            on_progress=cancel_at(token, 2, 4),
        )
        stopped = [record.getMessage() for record in caplog.records]
        caplog.clear()
        fit(data, strategy, checkpoint_path=checkpoint, resume_from=checkpoint)
        resumed = [record.getMessage() for record in caplog.records]

    epoch_lines = [line for line in stopped if line.startswith("epoch ")]
    assert len(epoch_lines) == 1 and epoch_lines[0].startswith("epoch 1/3: train loss ")
    assert "val loss" in epoch_lines[0] and "val accuracy" in epoch_lines[0]
    assert "checkpoint written at epoch 2, batch 0" in stopped
    assert "stop requested: stopping at epoch 2, batch 4/10" in stopped
    # The stop's checkpoint is written after the stop is logged, and is the last one.
    checkpoints = [line for line in stopped if line.startswith("checkpoint written")]
    assert checkpoints[-1] == "checkpoint written at epoch 2, batch 4"
    assert stopped.index(checkpoints[-1]) > stopped.index(
        "stop requested: stopping at epoch 2, batch 4/10"
    )
    assert resumed[0] == "resumed at epoch 2, batch 4/10"
    assert [line.split(":")[0] for line in resumed if line.startswith("epoch ")] == [
        "epoch 2/3",
        "epoch 3/3",
    ]
