"""THE training loop of the codebase.

``train(job)`` loads the data a strategy names and calls ``fit``; ``fit`` trains on
arrays already in memory (the benchmark calls it directly). Read ``fit`` top to
bottom: setup, resume, the epoch loop (forward/backward/update, cancellation,
progress), validation and checkpointing, then evaluation on the test part.

Batches are index slices of a per-epoch permutation drawn from a generator seeded
by (seed, epoch); the feature rows are moved to the device once and each batch's
windows gathered there (``training_engine.windows``): no DataLoader. Together
with the RNG states saved in every checkpoint, this lets a run stopped at any
batch resume to bit-identical weights on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training_engine.artifacts import save_model_artifact
from training_engine.cancellation import CancellationSignal
from training_engine.checkpoint import (
    capture_rng_state,
    config_fingerprint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from training_engine.dataset import PreparedDataset, prepare_dataset
from training_engine.device import resolve_device
from training_engine.errors import CheckpointError, DataError
from training_engine.evaluation import classification_report, majority_baseline_report
from training_engine.job import EpochMetrics, RunStatus, TrainingJob, TrainingResult
from training_engine.models import batched_logits, build_model
from training_engine.optim import EarlyStopping, LRSchedule, build_optimizer, build_scheduler
from training_engine.progress import ProgressCallback, ProgressEvent
from training_engine.strategy import StrategyConfig, TrainingSettings, strategy_to_dict
from training_engine.windows import WindowedRows, to_device

logger = logging.getLogger(__name__)

N_CLASSES = 3


@dataclass(slots=True)
class FitOutcome:
    """What :func:`fit` returns: the run's result and the trained model (in memory)."""

    result: TrainingResult
    model: nn.Module


@dataclass(slots=True)
class _RunState:
    """The objects a checkpoint saves and a resume restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler | None
    early_stopping: EarlyStopping
    history: list[EpochMetrics]


@dataclass(slots=True)
class _Position:
    """Where the loop is: the epoch in progress and the batches of it already trained."""

    epoch: int
    batch: int
    loss_sum: torch.Tensor  # sum of this epoch's batch losses, kept on the device
    stopped_early: bool = False


def train(
    job: TrainingJob,
    *,
    cancel: CancellationSignal | None = None,
    on_progress: ProgressCallback | None = None,
    batch_event_interval: float = 0.0,
) -> TrainingResult:
    """Train ``job.strategy`` on the data in ``job.data_dir`` and save the model.

    Args:
        job: strategy, data and model directories, checkpoint file, optional resume.
        cancel: polled after every batch; once set, the run checkpoints and returns.
        on_progress: receives ``started``/``batch``/``epoch``/``finished`` events.
        batch_event_interval: least seconds between two ``batch`` events (0: every batch).
            Reading a batch's loss waits for the device, so listeners that only need a
            few updates a second should say so.

    Returns:
        ``completed`` with ``model_path`` and test metrics, or ``cancelled`` with the
        checkpoint to resume from.

    Raises:
        DataError, StrategyConfigError, DeviceUnavailableError, CheckpointError.
    """
    # A stop that arrives while the worker is still starting up needs no batch at all.
    if cancel is not None and cancel.is_set():
        return _cancelled_before_training(job)
    data = prepare_dataset(job.strategy, job.data_dir, job.start_date, job.end_date)
    if cancel is not None and cancel.is_set():
        return _cancelled_before_training(job)
    outcome = fit(
        data,
        job.strategy,
        checkpoint_path=job.checkpoint_path,
        resume_from=job.resume_from,
        cancel=cancel,
        on_progress=on_progress,
        batch_event_interval=batch_event_interval,
    )
    result = outcome.result
    if result.status == "completed":
        result.model_path = save_model_artifact(
            job.models_dir,
            job.strategy,
            outcome.model,
            feature_names=list(data.feature_names),
            normalization=data.normalization,
            lookback=data.lookback,
            n_features=data.n_features,
            history=result.history,
            test_metrics=result.test_metrics,
            baseline_metrics=result.baseline_metrics,
            symbols=tuple(data.symbols),
            base_timeframe=data.base_timeframe,
        )
    return result


def _cancelled_before_training(job: TrainingJob) -> TrainingResult:
    """The result of a run stopped before its first batch: any earlier checkpoint stays valid."""
    resumable = (
        job.resume_from if job.resume_from is not None and job.resume_from.is_file() else None
    )
    return TrainingResult(
        status="cancelled",
        device=str(resolve_device(job.strategy.training.device)),
        epochs_completed=0,
        total_epochs=job.strategy.training.epochs,
        checkpoint_path=resumable,
    )


def fit(
    data: PreparedDataset,
    strategy: StrategyConfig,
    *,
    checkpoint_path: Path | None = None,
    resume_from: Path | None = None,
    cancel: CancellationSignal | None = None,
    on_progress: ProgressCallback | None = None,
    batch_event_interval: float = 0.0,
) -> FitOutcome:
    """Train a model on prepared arrays and evaluate it on their test part.

    Args:
        data: train/validation/test windows and labels (``prepare_dataset``'s output).
        strategy: model, features and training settings.
        checkpoint_path: file checkpointed every epoch and on cancellation (None: never).
        resume_from: a checkpoint of this same run to continue from.
        cancel: polled after every batch.
        on_progress: progress events; batch events are only built when this is set.
        batch_event_interval: least seconds between two ``batch`` events (0: every batch).

    Returns:
        The result (no ``model_path``: :func:`train` saves the artifact) and the model.
    """
    settings = strategy.training
    device = resolve_device(settings.device)
    _check_data(data)
    with _deterministic_mode(settings.deterministic):
        return _fit(
            data,
            strategy,
            settings,
            device,
            checkpoint_path,
            resume_from,
            cancel,
            on_progress,
            batch_event_interval,
        )


def _fit(
    data: PreparedDataset,
    strategy: StrategyConfig,
    settings: TrainingSettings,
    device: torch.device,
    checkpoint_path: Path | None,
    resume_from: Path | None,
    cancel: CancellationSignal | None,
    on_progress: ProgressCallback | None,
    batch_event_interval: float,
) -> FitOutcome:
    # ---- setup: seeds, model, data on the device once, optimizer, schedule
    _seed_everything(settings.seed)
    n_samples, lookback, n_features = len(data.train_ends), data.lookback, data.n_features
    model = build_model(strategy.model, n_features, lookback, N_CLASSES).to(device)
    on_device = to_device(data, device)  # the rows once; windows are gathered per batch
    x_train, y_train = on_device.x_train, on_device.y_train
    x_val, y_val = on_device.x_val, on_device.y_val
    batch_size = settings.batch_size
    n_batches = math.ceil(n_samples / batch_size)
    accumulation = settings.gradient_accumulation_steps
    optimizer = build_optimizer(settings, model.parameters())
    schedule = build_scheduler(settings, optimizer, math.ceil(n_batches / accumulation))
    early_stopping = EarlyStopping.from_settings(settings)
    amp_dtype = _autocast_dtype(settings.mixed_precision, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    forward = _maybe_compile(model, settings.compile, x_train[:2])
    fingerprint = config_fingerprint(_run_description(strategy, data))
    history: list[EpochMetrics] = []
    position = _Position(0, 0, torch.zeros((), device=device))

    # ---- resume: restores every state, the RNGs last
    run = _RunState(model, optimizer, schedule, scaler, early_stopping, history)
    if resume_from is not None:
        position = _resume(resume_from, fingerprint, run)
        position.loss_sum = position.loss_sum.to(device)

    def checkpoint(pos: _Position) -> None:
        if checkpoint_path is None:
            return
        save_checkpoint(checkpoint_path, _checkpoint_state(fingerprint, run, pos))

    epochs = settings.epochs
    if on_progress is not None:
        on_progress(ProgressEvent("started", position.epoch + 1, epochs, position.batch, n_batches))
    status: RunStatus = "completed"
    run_started, first_epoch = time.perf_counter(), position.epoch
    last_batch_event = -math.inf

    # ---- the epoch loop
    while position.epoch < epochs and not position.stopped_early:
        epoch = position.epoch
        order = _epoch_permutation(n_samples, settings.seed, epoch, device)
        loss_sum = position.loss_sum
        first_batch = position.batch
        model.train()
        epoch_started = time.perf_counter()
        for batch in range(first_batch, n_batches):
            index = order[batch * batch_size : (batch + 1) * batch_size]
            # forward/backward; the optimizer steps once per `accumulation` batches
            loss = _loss_step(forward, x_train[index], y_train[index], amp_dtype)
            _backward(loss / accumulation if accumulation > 1 else loss, scaler)
            if (batch + 1) % accumulation == 0 or batch + 1 == n_batches:
                _optimizer_step(model, optimizer, scaler, settings.gradient_clip)
                schedule.after_optimizer_step()
            loss_sum += loss.detach()
            if on_progress is not None and (
                batch + 1 == n_batches
                or time.perf_counter() - last_batch_event >= batch_event_interval
            ):
                last_batch_event = time.perf_counter()
                on_progress(
                    ProgressEvent(
                        "batch",
                        epoch + 1,
                        epochs,
                        batch + 1,
                        n_batches,
                        train_loss=float(loss.item()),
                        learning_rate=schedule.learning_rate,
                    )
                )
            # cancellation: stop after the batch in flight, at any position
            if cancel is not None and cancel.is_set():
                position = _Position(epoch, batch + 1, loss_sum)
                checkpoint(position)
                status = "cancelled"
                break
        if status == "cancelled":
            break
        train_seconds = time.perf_counter() - epoch_started

        # ---- end of epoch: validate, schedule, early stopping, checkpoint
        val_loss, val_accuracy = _validate(model, x_val, y_val, amp_dtype)
        train_loss = float(loss_sum.item()) / n_batches
        schedule.after_epoch(val_loss)
        stop = early_stopping.update(val_loss, model)
        trained = min(n_samples, (n_batches - first_batch) * batch_size)
        metrics = EpochMetrics(
            epoch=epoch + 1,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            learning_rate=schedule.learning_rate,
            epoch_seconds=time.perf_counter() - epoch_started,
            samples_per_second=trained / train_seconds if train_seconds > 0 else 0.0,
        )
        history.append(metrics)
        position = _Position(epoch + 1, 0, torch.zeros((), device=device), stop)
        checkpoint(position)
        if on_progress is not None:
            elapsed = time.perf_counter() - run_started
            done = epoch + 1 - first_epoch
            on_progress(
                ProgressEvent(
                    "epoch",
                    epoch + 1,
                    epochs,
                    n_batches,
                    n_batches,
                    train_loss=train_loss,
                    val_loss=val_loss,
                    val_accuracy=val_accuracy,
                    learning_rate=metrics.learning_rate,
                    samples_per_second=metrics.samples_per_second,
                    eta_seconds=(elapsed / max(1, done)) * (epochs - epoch - 1),
                    epoch_seconds=metrics.epoch_seconds,
                )
            )
        if stop:
            logger.info("early stopping after epoch %d (val loss %.4f)", epoch + 1, val_loss)

    # ---- evaluation on the test part
    result = TrainingResult(
        status=status,
        device=str(device),
        epochs_completed=history[-1].epoch if history else 0,
        total_epochs=epochs,
        history=history,
        checkpoint_path=checkpoint_path,
        stopped_early=position.stopped_early,
        feature_names=list(data.feature_names),
    )
    if status == "completed":
        # The model that is evaluated and saved is the best epoch's, not the last one's.
        if early_stopping.restore_best(model):
            logger.info(
                "restored the weights of the best epoch (val loss %.4f)", early_stopping.best_loss
            )
        predictions = _predict(model, on_device.x_test, amp_dtype)
        result.test_metrics = classification_report(data.y_test, predictions, N_CLASSES)
        result.baseline_metrics = majority_baseline_report(data.y_train, data.y_test, N_CLASSES)
    if on_progress is not None:
        last = history[-1] if history else None
        on_progress(
            ProgressEvent(
                "finished",
                position.epoch if status == "completed" else position.epoch + 1,
                epochs,
                position.batch if status == "cancelled" else n_batches,
                n_batches,
                train_loss=last.train_loss if last else None,
                val_loss=last.val_loss if last else None,
                val_accuracy=last.val_accuracy if last else None,
                learning_rate=schedule.learning_rate,
            )
        )
    return FitOutcome(result=result, model=model)


# ---------------------------------------------------------------- setup helpers


def _check_data(data: PreparedDataset) -> None:
    if data.rows.ndim != 2:
        raise DataError(f"rows must be [rows, features], got shape {data.rows.shape}")
    for part in ("train", "val", "test"):
        ends, y = getattr(data, f"{part}_ends"), getattr(data, f"y_{part}")
        if ends.ndim != 1:
            raise DataError(f"{part}_ends must be one row index per sample, got {ends.shape}")
        if len(ends) != len(y):
            raise DataError(f"the {part} part has {len(ends)} windows but {len(y)} labels")
        if len(ends) == 0:
            raise DataError(
                f"the {part} part is empty: use more data or a different data_split/date range"
            )
        if ends.min() < data.lookback - 1 or ends.max() >= len(data.rows):
            raise DataError(
                f"{part}_ends must lie in [{data.lookback - 1}, {len(data.rows) - 1}] "
                f"(a window of {data.lookback} rows ends there)"
            )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


@contextlib.contextmanager
def _deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels for the run only: the setting is process-wide."""
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def _autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """bf16/fp16 autocast on CUDA only; ``auto`` prefers bf16 where the GPU has it."""
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def _maybe_compile(
    model: nn.Module, enabled: bool, sample: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` the model when asked; fall back to eager with a warning if it fails."""
    if not enabled:
        return model
    try:
        compiled: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model)
        # Compilation is lazy: trigger it now so a failure falls back before training.
        with torch.no_grad():
            compiled(sample)
    except Exception as exc:  # torch.compile raises many backend-specific types
        logger.warning("torch.compile failed, training without it: %s", exc)
        return model
    return compiled


def _run_description(strategy: StrategyConfig, data: PreparedDataset) -> dict[str, Any]:
    """What must match for a checkpoint to belong to this run (device/compile may differ)."""
    config = strategy_to_dict(strategy)
    config.pop("ignored_keys", None)
    for key in ("device", "compile"):
        config["training"].pop(key, None)
    windows = [data.lookback, data.n_features]
    config["data"] = {
        "x_train": [len(data.train_ends), *windows],
        "x_val": [len(data.val_ends), *windows],
        "feature_names": list(data.feature_names),
    }
    return config


def _epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The epoch's sample order, from its own generator: a resumed run redraws it exactly."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


# ---------------------------------------------------------------- the step


def _loss_step(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    amp_dtype: torch.dtype | None,
) -> torch.Tensor:
    if amp_dtype is None:
        return F.cross_entropy(forward(x), y)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype):
        return F.cross_entropy(forward(x), y)


def _backward(loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()


def _optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    gradient_clip: float | None,
) -> None:
    if scaler is not None:
        if gradient_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), gradient_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        if gradient_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), gradient_clip)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _validate(
    model: nn.Module, x: WindowedRows, y: torch.Tensor, amp_dtype: torch.dtype | None
) -> tuple[float, float]:
    """Validation loss and accuracy; eval mode, so no random numbers are drawn."""
    with _autocast(x.device, amp_dtype):
        logits = batched_logits(model, x)
    loss = F.cross_entropy(logits, y)
    accuracy = (logits.argmax(dim=1) == y).float().mean()
    return float(loss.item()), float(accuracy.item())


def _predict(model: nn.Module, x: WindowedRows, amp_dtype: torch.dtype | None) -> np.ndarray:
    with _autocast(x.device, amp_dtype):
        logits = batched_logits(model, x)
    predictions: np.ndarray = logits.argmax(dim=1).cpu().numpy()
    return predictions


def _autocast(
    device: torch.device, amp_dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


# ---------------------------------------------------------------- checkpoints


def _checkpoint_state(fingerprint: str, run: _RunState, position: _Position) -> dict[str, Any]:
    model, early_stopping, scaler = run.model, run.early_stopping, run.scaler
    # Gradients are only pending when stopped inside an accumulation group.
    grads = [p.grad for p in model.parameters()]
    return {
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.schedule.state_dict(),
        "grad_scaler": scaler.state_dict() if scaler is not None else None,
        "early_stopping": early_stopping.state_dict(),
        "grads": grads if any(g is not None for g in grads) else None,
        "rng": capture_rng_state(),
        "epoch": position.epoch,
        "batch": position.batch,
        "loss_sum": position.loss_sum,
        "stopped_early": position.stopped_early,
        "history": [asdict(m) for m in run.history],
        "best_val_loss": early_stopping.best_loss,
    }


def _resume(path: Path, fingerprint: str, run: _RunState) -> _Position:
    """Load ``path`` into the run's objects; refuse a checkpoint of another run."""
    model, scaler = run.model, run.scaler
    state = load_checkpoint(path)
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} belongs to a different run: the strategy, training "
            "settings or data shape differ from this one"
        )
    try:
        model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.schedule.load_state_dict(state["scheduler"])
        if scaler is not None and state["grad_scaler"] is not None:
            scaler.load_state_dict(state["grad_scaler"])
        run.early_stopping.load_state_dict(state["early_stopping"])
        if state["grads"] is not None:
            for param, grad in zip(model.parameters(), state["grads"], strict=True):
                param.grad = None if grad is None else grad.to(param.device)
        run.history[:] = [EpochMetrics(**row) for row in state["history"]]
        position = _Position(
            epoch=int(state["epoch"]),
            batch=int(state["batch"]),
            loss_sum=state["loss_sum"],
            stopped_early=bool(state["stopped_early"]),
        )
        restore_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be restored: {exc}") from exc
    return position
