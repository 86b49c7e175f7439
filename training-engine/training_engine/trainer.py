"""THE training loop of the codebase.

``train(job)`` loads the data a strategy names, calls ``fit`` and saves the model;
``fit`` trains on arrays already in memory (the benchmark calls it directly). Read
``fit`` top to bottom: setup, resume, the epoch loop (one epoch of batches, then the
end of the epoch: validation, schedule, early stopping, checkpoint), evaluation of the
epoch with the lowest validation loss (with or without early stopping).

Batches are index slices of a per-epoch permutation drawn from a generator seeded
by (seed, epoch); the feature rows are moved to the device once and each batch's
windows gathered there (``training_engine.windows``): no DataLoader. Together with
the RNG states saved in every checkpoint (:class:`RunState`), this lets a run stopped
at any batch resume to bit-identical weights on the CPU, and on CUDA and MPS with
``deterministic`` (docs/gpu.md). Before the rows go to the device, the memory the run
needs is estimated and checked against what the device has free
(``training_engine.device_memory``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training_engine.cancellation import CancellationSignal
from training_engine.checkpoint import RunState, config_fingerprint, resume_run, save_run
from training_engine.dataset import PreparedDataset, prepare_dataset, prepare_walk_forward
from training_engine.device import training_device
from training_engine.device_failures import device_errors
from training_engine.device_memory import (
    estimate_memory,
    memory_cap,
    memory_reader,
    place_rows,
)
from training_engine.device_probe import DeviceProbe, current_probe
from training_engine.errors import DataError, NonFiniteLossError, StrategyConfigError
from training_engine.evaluation import (
    classification_report,
    majority_baseline_report,
    mean_baseline_report,
    part_score,
    regression_report,
)
from training_engine.job import PartScore, RunStatus, TrainingJob, TrainingResult
from training_engine.losses import LossFunction, build_loss, loss_class_weights
from training_engine.model_folders import write_model_folders
from training_engine.models import batched_logits, build_model
from training_engine.optim import EarlyStopping, build_optimizer, build_scheduler
from training_engine.precision import Precision, choose_precision, device_modes
from training_engine.precision import autocast as _autocast
from training_engine.prepared_cache import PreparedDataCache
from training_engine.progress import EpochMetrics, ProgressCallback, ProgressEmitter, report_phase
from training_engine.strategy import StrategyConfig, TrainingSettings, strategy_to_dict
from training_engine.verdict import (
    FoldPredictions,
    class_balance,
    compare_regression_with_baseline,
    compare_with_baselines,
)
from training_engine.walk_forward import run_walk_forward
from training_engine.windows import WindowedRows, release_host_rows, to_device

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FitOutcome:
    """What :func:`fit` returns: the run's result and the trained model (in memory)."""

    result: TrainingResult
    model: nn.Module
    test_predictions: np.ndarray | None = None  # None unless completed


@dataclass(frozen=True, slots=True)
class _Setup:
    """What setup builds once and the loop only reads: settings, device, data on the device."""

    settings: TrainingSettings
    device: torch.device
    forward: Callable[[torch.Tensor], torch.Tensor]  # the model, compiled when asked
    amp_dtype: torch.dtype | None
    inference_chunk: int  # windows per validation/test forward pass
    x_train: WindowedRows  # indexes like [samples, lookback, features]; gathered per batch
    y_train: torch.Tensor
    x_val: WindowedRows
    y_val: torch.Tensor
    x_test: WindowedRows
    w_train: torch.Tensor | None  # per-sample weights of the train part, None: unweighted
    loss: LossFunction
    regression: bool
    n_batches: int
    class_weight: torch.Tensor | None  # model.training.class_weights, None: unweighted

    @property
    def n_samples(self) -> int:
        return int(self.x_train.shape[0])


def _job_dates(job: TrainingJob) -> tuple[str | None, str | None]:
    """The job's date range, else the strategy file's."""
    return job.start_date or job.strategy.start_date, job.end_date or job.strategy.end_date


def train(
    job: TrainingJob,
    *,
    cancel: CancellationSignal | None = None,
    on_progress: ProgressCallback | None = None,
    batch_event_interval: float = 0.0,
    data_cache: PreparedDataCache | None = None,
) -> TrainingResult:
    """Train ``job.strategy`` on the data in ``job.data_dir`` and write its model folders.

    Args:
        job: strategy, data and model directories, checkpoint file, optional resume.
        cancel: polled after every batch; once set, the run checkpoints and returns.
        on_progress: receives ``phase``/``started``/``batch``/``epoch``/``finished`` events.
        batch_event_interval: least seconds between two ``batch`` events (0: every batch).
            Reading a batch's loss waits for the device, so listeners that only need a
            few updates a second should say so.
        data_cache: prepared datasets to reuse and to add to (None: prepare every time).
            Walk-forward folds are always prepared afresh.

    Returns:
        ``completed`` with test metrics, part scores, ``model_path`` and KTRDR's copy
        (``model_folders``), or ``cancelled`` with the checkpoint to resume from.

    Raises:
        DataError, StrategyConfigError, DeviceUnavailableError, CheckpointError.
    """
    # A stop that arrives while the worker is still starting up needs no batch at all.
    if cancel is not None and cancel.is_set():
        return _cancelled_before_training(job)
    report_phase(on_progress, "loading_data")
    if job.strategy.evaluation.method == "walk_forward":
        return _train_walk_forward(
            job, cancel=cancel, on_progress=on_progress, batch_event_interval=batch_event_interval
        )
    # The run's one preparation of its data: training, scoring and both folders use it.
    data = _prepared_data(job, data_cache)
    logger.info(
        "data: %s %s, %d train / %d validation / %d test samples, %d features, lookback %d",
        ",".join(data.symbols),
        data.base_timeframe,
        len(data.y_train),
        len(data.y_val),
        len(data.y_test),
        len(data.feature_names),
        data.lookback,
    )
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
        # Nothing here reads the rows again; the cache's next run does.
        keep_host_rows=data_cache is not None,
    )
    if outcome.result.status == "completed":
        _save(job, outcome.model, data, outcome.result, on_progress)
    return outcome.result


def _prepared_data(job: TrainingJob, cache: PreparedDataCache | None) -> PreparedDataset:
    """The job's dataset: from the cache when the same inputs were prepared before."""
    start_date, end_date = _job_dates(job)

    def prepare() -> PreparedDataset:
        return prepare_dataset(job.strategy, job.data_dir, start_date, end_date)

    if cache is None:
        return prepare()
    cached = cache.prepared(job.strategy, job.data_dir, start_date, end_date, prepare)
    logger.info(
        "prepared data cache %s (key %s; %d datasets, %.1f MB held)",
        "hit: data reused" if cached.hit else "miss: data prepared",
        cached.key[:16],
        len(cache),
        cache.held_bytes / 1e6,
    )
    return cached.data


def _train_walk_forward(
    job: TrainingJob,
    *,
    cancel: CancellationSignal | None,
    on_progress: ProgressCallback | None,
    batch_event_interval: float,
) -> TrainingResult:
    """K folds trained in turn (``walk_forward``); the last fold's model is saved, scored on
    that fold's parts."""

    def fit_fold(data: PreparedDataset) -> tuple[TrainingResult, Any, np.ndarray | None]:
        outcome = fit(
            data,
            job.strategy,
            cancel=cancel,
            on_progress=on_progress,
            batch_event_interval=batch_event_interval,
        )
        return outcome.result, outcome.model, outcome.test_predictions

    if job.strategy.labels.task == "regression":
        raise StrategyConfigError(
            "evaluation.method",
            "walk_forward judges classes against baselines; a regression target "
            f"({job.strategy.labels.source}) takes method single_split",
        )
    folds = prepare_walk_forward(job.strategy, job.data_dir, *_job_dates(job))
    result, model, data = run_walk_forward(folds, fit_fold, seed=job.strategy.training.seed)
    if result.status == "completed" and data is not None:
        _save(job, model, data, result, on_progress)
    return result


def _save(
    job: TrainingJob,
    model: nn.Module,
    data: PreparedDataset,
    result: TrainingResult,
    on_progress: ProgressCallback | None,
) -> None:
    report_phase(on_progress, "saving")
    write_model_folders(job.models_dir, job.strategy, model, data, result)


def _cancelled_before_training(job: TrainingJob) -> TrainingResult:
    """The result of a run stopped before its first batch: any earlier checkpoint stays valid."""
    resumable = (
        job.resume_from if job.resume_from is not None and job.resume_from.is_file() else None
    )
    return TrainingResult(
        status="cancelled",
        device=str(training_device(job.strategy.training.device, job.strategy.model.type)),
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
    keep_host_rows: bool = True,
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
        keep_host_rows: False lets an MPS run drop ``data.rows`` once the rows are on the
            device (unified memory would hold them twice); the caller must not read them.

    Returns:
        The result (no ``model_path``: :func:`train` writes the folders) and the model.

    Raises:
        DeviceOutOfMemoryError: the run does not fit the device, or ran out of memory.
    """
    settings = strategy.training
    probe = current_probe()
    device = training_device(settings.device, strategy.model.type, probe)
    _check_data(data)
    with (
        device_modes(settings.deterministic, device, probe),
        device_errors(device, settings.batch_size),
        contextlib.ExitStack() as run_scope,
    ):
        # ---- setup: seeds, model, memory check, data on the device once, optimizer, schedule
        setup, run = _setup(
            data, strategy, device, probe, keep_host_rows=keep_host_rows, run_scope=run_scope
        )

        # ---- resume: restores every state, the RNGs last
        if resume_from is not None:
            resume_run(resume_from, run)
            logger.info(
                "resumed at epoch %d, batch %d/%d", run.epoch + 1, run.batch, setup.n_batches
            )

        progress = ProgressEmitter(
            on_progress,
            total_epochs=settings.epochs,
            total_batches=setup.n_batches,
            batch_event_interval=batch_event_interval,
            device_memory=memory_reader(device, probe),
        )
        report_phase(on_progress, "training")
        progress.started(run.epoch + 1, run.batch)
        # These two lines time a session's fixed cost around its batches (bench/cluster.py).
        logger.info("training: first batch (epoch %d, batch %d)", run.epoch + 1, run.batch + 1)

        # ---- the epoch loop
        status: RunStatus = "completed"
        while run.epoch < settings.epochs and not run.stopped_early:
            epoch_started, first_batch = time.perf_counter(), run.batch
            # train the epoch's batches; cancellation stops after the batch in flight
            if _train_epoch(setup, run, progress=progress, cancel=cancel):
                logger.info(
                    "stop requested: stopping at epoch %d, batch %d/%d",
                    run.epoch + 1,
                    run.batch,
                    setup.n_batches,
                )
                _checkpoint(run, checkpoint_path)
                status = "cancelled"
                break
            # end of epoch: validate, schedule, early stopping, then checkpoint
            metrics = _end_epoch(setup, run, epoch_started=epoch_started, first_batch=first_batch)
            _log_epoch(metrics, settings.epochs)
            _checkpoint(run, checkpoint_path)
            progress.epoch(metrics)
            if run.stopped_early:
                logger.info(
                    "early stopping after epoch %d (val loss %.4f)", metrics.epoch, metrics.val_loss
                )

        logger.info("training: last batch (%d epochs done, %s)", run.epoch, status)

        # ---- evaluation on the test part
        result = TrainingResult(
            status=status,
            device=str(device),
            epochs_completed=run.history[-1].epoch if run.history else 0,
            total_epochs=settings.epochs,
            history=run.history,
            checkpoint_path=checkpoint_path,
            stopped_early=run.stopped_early,
            feature_names=list(data.feature_names),
        )
        predictions = None
        if status == "completed":
            report_phase(on_progress, "evaluating")
            predictions = _evaluate(setup, run, data, result)
            progress.finished(run.epoch, setup.n_batches, _last(run), run.schedule.learning_rate)
        else:
            progress.finished(run.epoch + 1, run.batch, _last(run), run.schedule.learning_rate)
    return FitOutcome(result=result, model=run.model, test_predictions=predictions)


def _setup(
    data: PreparedDataset,
    strategy: StrategyConfig,
    device: torch.device,
    probe: DeviceProbe,
    *,
    keep_host_rows: bool,
    run_scope: contextlib.ExitStack,
) -> tuple[_Setup, RunState]:
    """Seed, build the model, check the memory, move the data to the device, build the
    optimizer and schedule, compile when asked. ``run_scope`` holds the memory cap to
    the end of the run."""
    settings = strategy.training
    _seed_everything(settings.seed)
    n_samples, lookback, n_features = len(data.train_ends), data.lookback, data.n_features
    n_classes = len(data.class_names)
    model = build_model(strategy.model, n_features, lookback, n_classes or 1)
    # Checked before anything is on the device, so the free memory read is the run's to use.
    estimate = estimate_memory(data, model, strategy.model, settings)
    rows = place_rows(estimate, device, probe.available_memory(device), settings.memory_fraction)
    # Only a run that passed the check caps the allocator (MPS cannot put a cap back).
    run_scope.enter_context(memory_cap(device, settings.memory_fraction, probe))
    model = model.to(device)
    # The rows once; windows are gathered per batch.
    on_device = to_device(data, device, rows_on_host=rows == "host")
    if not keep_host_rows and device.type == "mps" and rows == "device":
        release_host_rows(data)
    x_train, y_train = on_device.x_train, on_device.y_train
    weights = loss_class_weights(settings.class_weights, data.y_train, n_classes)
    class_weight = None if weights is None else torch.from_numpy(weights).to(device)
    n_batches = math.ceil(n_samples / settings.batch_size)
    optimizer = build_optimizer(settings, model.parameters())
    optimizer_steps = math.ceil(n_batches / settings.gradient_accumulation_steps)
    schedule = build_scheduler(settings, optimizer, optimizer_steps)
    precision = choose_precision(settings.mixed_precision, device, probe)
    _log_precision(settings.mixed_precision, device, precision)
    run = RunState(
        fingerprint=config_fingerprint(_run_description(strategy, data)),
        model=model,
        optimizer=optimizer,
        schedule=schedule,
        scaler=torch.amp.GradScaler(device.type) if precision.needs_scaler else None,
        early_stopping=EarlyStopping.from_settings(settings),
        loss_sum=torch.zeros((), device=device),
    )
    setup = _Setup(
        settings=settings,
        device=device,
        forward=model,
        amp_dtype=precision.dtype,
        inference_chunk=estimate.inference_chunk,
        x_train=x_train,
        y_train=y_train,
        x_val=on_device.x_val,
        y_val=on_device.y_val,
        x_test=on_device.x_test,
        w_train=on_device.w_train,
        loss=build_loss(settings, class_weight, regression=data.is_regression),
        regression=data.is_regression,
        n_batches=n_batches,
        class_weight=class_weight,
    )
    if settings.compile:
        setup = replace(setup, forward=_compile_or_eager(setup, model, probe))
    return setup, run


def _train_epoch(
    setup: _Setup,
    run: RunState,
    *,
    progress: ProgressEmitter,
    cancel: CancellationSignal | None,
) -> bool:
    """Train the batches of ``run.epoch`` from ``run.batch`` on; True if ``cancel`` stopped it.

    ``cancel`` is polled after every batch: a stop lands after the batch in flight, at any
    position (the last batch of the epoch included), which ``run`` then holds.
    """
    settings, x, y, amp_dtype = setup.settings, setup.x_train, setup.y_train, setup.amp_dtype
    model, optimizer, scaler, schedule = run.model, run.optimizer, run.scaler, run.schedule
    batch_size, n_batches = settings.batch_size, setup.n_batches
    accumulation = settings.gradient_accumulation_steps
    order = _epoch_permutation(setup.n_samples, settings.seed, run.epoch, setup.device)
    loss_sum = run.loss_sum  # added to in place: run.loss_sum follows
    w_train = setup.w_train
    model.train()
    for batch in range(run.batch, n_batches):
        index = order[batch * batch_size : (batch + 1) * batch_size]
        # forward/backward; the optimizer steps once per `accumulation` batches
        weights = None if w_train is None else w_train[index]
        loss = _loss_step(setup, x[index], y[index], weights, amp_dtype)
        _backward(loss / accumulation if accumulation > 1 else loss, scaler)
        if (batch + 1) % accumulation == 0 or batch + 1 == n_batches:
            _optimizer_step(model, optimizer, scaler, settings.gradient_clip)
            schedule.after_optimizer_step()
        loss_sum += loss.detach()
        run.batch = batch + 1
        # Only a loss already read for an event is checked: no extra device sync per batch.
        read = progress.batch(run.epoch + 1, run.batch, loss, schedule.learning_rate)
        if read is not None:
            _check_finite("training loss", read, run)
        if cancel is not None and cancel.is_set():
            return True
    return False


def _end_epoch(
    setup: _Setup, run: RunState, *, epoch_started: float, first_batch: int
) -> EpochMetrics:
    """Validate, step the schedule and early stopping, record the epoch; move to the next."""
    train_seconds = time.perf_counter() - epoch_started
    val_loss, val_accuracy = _validate(setup, run.model, setup.x_val, setup.y_val)
    n_batches = setup.n_batches
    train_loss = float(run.loss_sum.item()) / n_batches
    # Before anything is recorded or checkpointed: the last good checkpoint stays.
    _check_finite("training loss", train_loss, run)
    _check_finite("validation loss", val_loss, run)
    run.schedule.after_epoch(val_loss)
    stop = run.early_stopping.update(val_loss, run.model)
    trained = min(setup.n_samples, (n_batches - first_batch) * setup.settings.batch_size)
    metrics = EpochMetrics(
        epoch=run.epoch + 1,
        train_loss=train_loss,
        val_loss=val_loss,
        val_accuracy=val_accuracy,
        learning_rate=run.schedule.learning_rate,
        epoch_seconds=time.perf_counter() - epoch_started,
        samples_per_second=trained / train_seconds if train_seconds > 0 else 0.0,
    )
    run.history.append(metrics)
    run.epoch, run.batch, run.stopped_early = run.epoch + 1, 0, stop
    run.loss_sum = torch.zeros((), device=setup.device)
    return metrics


def _evaluate(
    setup: _Setup, run: RunState, data: PreparedDataset, result: TrainingResult
) -> np.ndarray:
    """Test metrics of the model and of the baselines, and each part's score, into
    ``result``; the test predictions (classes, or values for a regression target)."""
    # The model that is evaluated and saved is the best epoch's by validation loss, not the
    # last one's, whether or not early stopping is enabled.
    best = run.early_stopping
    restored = best.restore_best(run.model)
    # The history is checkpointed, so the best epoch is found there, resumed or not.
    epoch = next((m.epoch for m in run.history if m.val_loss == best.best_loss), None)
    if restored:
        logger.info("restored the weights of epoch %s (val loss %.4f)", epoch, best.best_loss)
    last = _last(run)
    result.evaluation["weights"] = {
        "chosen_by": "lowest validation loss" if restored else "last epoch",
        "epoch": epoch if restored else (last.epoch if last else None),
        "val_loss": best.best_loss if restored else (last.val_loss if last else None),
        "early_stopping": best.enabled,
    }
    result.evaluation["data_report"] = list(data.data_report)
    result.evaluation["splits"] = {
        "mode": data.split_mode,
        "parts": [part.to_dict() for part in data.splits],
    }
    class_weight = setup.class_weight
    result.evaluation["loss"] = {
        "class_weights": "none" if setup.regression else setup.settings.class_weights,
        "weights": None if class_weight is None else [float(w) for w in class_weight.cpu()],
        "sample_weights": setup.w_train is not None,
    }
    outputs = _predict(run.model, setup.x_test, setup.amp_dtype, setup.inference_chunk)
    result.part_scores = _part_scores(setup, run.model, data, outputs)
    if setup.regression:
        values = outputs[:, 0]
        result.test_metrics = regression_report(data.y_test, values)
        result.baseline_metrics = mean_baseline_report(data.y_train, data.y_test)
        verdict = compare_regression_with_baseline(
            data.y_train, data.y_test, values, seed=setup.settings.seed
        )
        result.evaluation["verdict"] = verdict.to_dict()
        return values
    names = data.class_names
    predictions = outputs.argmax(axis=1)
    result.test_metrics = classification_report(data.y_test, predictions, len(names), names)
    result.baseline_metrics = majority_baseline_report(data.y_train, data.y_test, len(names), names)
    parts = {"train": data.y_train, "validation": data.y_val, "test": data.y_test}
    result.evaluation["class_shares"] = class_balance(parts, names)
    fold = FoldPredictions(data.y_train, data.y_test, predictions)
    verdict = compare_with_baselines([fold], n_classes=len(names), seed=setup.settings.seed)
    result.evaluation["verdict"] = verdict.to_dict()
    return predictions


def _part_scores(
    setup: _Setup, model: nn.Module, data: PreparedDataset, test_outputs: np.ndarray
) -> dict[str, PartScore]:
    """Each part's loss and accuracy with the weights evaluated (what KTRDR's clients read)."""
    outputs = {
        "train": _predict(model, setup.x_train, setup.amp_dtype, setup.inference_chunk),
        "validation": _predict(model, setup.x_val, setup.amp_dtype, setup.inference_chunk),
        "test": test_outputs,
    }
    targets = {"train": data.y_train, "validation": data.y_val, "test": data.y_test}
    return {
        part: part_score(outputs[part], targets[part], regression=setup.regression)
        for part in outputs
    }


def _check_finite(what: str, value: float, run: RunState) -> None:
    """Stop a diverged run at once (NaN or infinite loss) rather than save a useless model."""
    if not math.isfinite(value):
        last = run.history[-1].train_loss if run.history else None
        raise NonFiniteLossError(what, value, run.epoch + 1, last)


def _checkpoint(run: RunState, path: Path | None) -> None:
    if path is not None:
        save_run(path, run)
        # A resume starts at the next batch: say where that is.
        logger.info("checkpoint written at epoch %d, batch %d", run.epoch + 1, run.batch)


def _log_epoch(metrics: EpochMetrics, total_epochs: int) -> None:
    """One line per epoch in the run's log: what a person follows a training by."""
    logger.info(
        "epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.3f, %.1fs",
        metrics.epoch,
        total_epochs,
        metrics.train_loss,
        metrics.val_loss,
        metrics.val_accuracy,
        metrics.epoch_seconds,
    )


def _last(run: RunState) -> EpochMetrics | None:
    return run.history[-1] if run.history else None


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
    weights = data.w_train
    if weights is not None and (weights.shape != data.y_train.shape or not (weights >= 0).all()):
        raise DataError(
            f"w_train must hold one weight >= 0 per train sample: {weights.shape} "
            f"for {data.y_train.shape} labels"
        )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


def _log_precision(mode: str, device: torch.device, precision: Precision) -> None:
    """Say what the run computes in when that is not what ``mixed_precision`` reads as."""
    if precision.note is None:
        return
    # An explicit bf16/fp16 that does not run as asked is worth a warning; auto is not.
    level = logging.INFO if mode == "auto" else logging.WARNING
    logger.log(level, "%s (device %s)", precision.note, device)


def _compile_or_eager(
    setup: _Setup, model: nn.Module, probe: DeviceProbe
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` the model, tried on a real training step; eager if that fails.

    Compilation is lazy and a backward graph is only built at the first backward pass,
    so the compiled model runs a forward and backward pass at every training batch shape
    here, before the first batch: a compiler failure then falls back with a warning
    instead of ending the run.
    """
    try:
        compiled: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model)
        _trial_steps(replace(setup, forward=compiled), model, probe)
    except Exception as exc:  # torch.compile raises many backend-specific types
        logger.warning("torch.compile failed, training without it: %s", exc)
        return model
    return compiled


def _trial_steps(setup: _Setup, model: nn.Module, probe: DeviceProbe) -> None:
    """A forward and backward pass at each batch shape of an epoch, leaving no trace.

    Dropout draws from the CPU's and the device's generators and the backward pass
    leaves gradients: both are put back, so the run is exactly an eager run's.
    """
    batch_size, n_samples, device = setup.settings.batch_size, setup.n_samples, setup.device
    sizes = {min(batch_size, n_samples), n_samples % batch_size} - {0}
    cpu_state = torch.get_rng_state()
    device_state = probe.rng_state(device) if device.type != "cpu" else None
    buffers = [buffer.detach().clone() for buffer in model.buffers()]
    try:
        for size in sorted(sizes, reverse=True):
            index = torch.arange(size, device=device)
            weights = None if setup.w_train is None else setup.w_train[index]
            loss = _loss_step(
                setup, setup.x_train[index], setup.y_train[index], weights, setup.amp_dtype
            )
            loss.backward()
    finally:
        for param in model.parameters():
            param.grad = None
        with torch.no_grad():
            for buffer, saved in zip(model.buffers(), buffers, strict=True):
                buffer.copy_(saved)
        torch.set_rng_state(cpu_state)
        if device_state is not None:
            probe.set_rng_state(device, device_state)


# (section, key, default) of settings added after checkpoints were first written.
_ADDED_SETTINGS: tuple[tuple[str | None, str, Any], ...] = (
    ("training", "class_weights", "balanced"),
    ("data_split", "mode", "calendar"),
    (None, "bar_timestamp", "open"),
    (None, "timezone", "UTC"),
    (None, "evaluation", {"method": "single_split", "folds": 3}),
)


def _run_description(strategy: StrategyConfig, data: PreparedDataset) -> dict[str, Any]:
    """What must match for a checkpoint to belong to this run (device, compile and memory
    fraction may differ)."""
    config = strategy_to_dict(strategy)
    config.pop("ignored_keys", None)
    for key in ("device", "compile", "memory_fraction"):
        config["training"].pop(key, None)
    # Settings added later count only when used, so older checkpoints still resume.
    for section, key, default in _ADDED_SETTINGS:
        holder = config if section is None else config[section]
        if holder.get(key) == default:
            del holder[key]
    windows = [data.lookback, data.n_features]
    config["data"] = {
        "x_train": [len(data.train_ends), *windows],
        "x_val": [len(data.val_ends), *windows],
        "feature_names": list(data.feature_names),
    }
    if data.w_train is not None:
        config["data"]["sample_weights"] = True
    return config


def _epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The epoch's sample order, from its own generator: a resumed run redraws it exactly."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


# ---------------------------------------------------------------- the step


def _loss_step(
    setup: _Setup,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor | None,
    amp_dtype: torch.dtype | None,
) -> torch.Tensor:
    with _autocast(x.device, amp_dtype):
        return setup.loss(setup.forward(x), y, weights)


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
    setup: _Setup, model: nn.Module, x: WindowedRows, y: torch.Tensor
) -> tuple[float, float]:
    """Validation loss and accuracy (directional for a regression target); eval mode."""
    with _autocast(x.device, setup.amp_dtype):
        outputs = batched_logits(model, x, setup.inference_chunk)
    loss = setup.loss(outputs, y, None)
    if setup.regression:
        accuracy = (torch.sign(outputs[:, 0].float()) == torch.sign(y)).float().mean()
    else:
        accuracy = (outputs.argmax(dim=1) == y).float().mean()
    return float(loss.item()), float(accuracy.item())


def _predict(
    model: nn.Module, x: WindowedRows, amp_dtype: torch.dtype | None, chunk: int
) -> np.ndarray:
    with _autocast(x.device, amp_dtype):
        outputs = batched_logits(model, x, chunk)
    values: np.ndarray = outputs.float().cpu().numpy()
    return values
