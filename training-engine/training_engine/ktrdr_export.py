"""A completed run's model in KTRDR's folder layout, and the summary KTRDR's clients read.

Written by ``model_folders.write_model_folders`` from the run's model and data in memory,
under ``{models_dir}/ktrdr/`` (point KTRDR's ``ModelStorage(base_path=...)`` or its
backtester there)::

    {strategy}/{SYMBOL}_{timeframe}_v{N}/   model.pt (a state dict), config.json, metrics.json,
                                            features.json, metadata.json (is_trained: true),
                                            metadata_v3.json or KTRDR_UNSUPPORTED.txt
    {strategy}/{SYMBOL}_{timeframe}_latest  relative link to the newest version

A model KTRDR's backtester can run as trained (an MLP over one bar with KTRDR's
activations, an LSTM or a GRU, on inputs KTRDR computes: ``ktrdr_inputs``) gets
``metadata_v3.json``, the weights under KTRDR's key names with the standardisation of its
membership inputs folded into the first layer (``ktrdr_weights``), and its raw inputs'
standardisation in ``normalization_params``: KTRDR's ``ModelBundle.load`` loads it and its
backtester computes the network's inputs from the bars. Any other model gets, instead of
``metadata_v3.json``, ``KTRDR_UNSUPPORTED.txt`` saying why, the same reasons in the run's
result and summary (``ktrdr_unsupported``), and the folder KTRDR's earlier eras load
(weights as trained, under KTRDR's names where it has the network). The summary
(train/validation/test loss and accuracy, model info) is also written into our artifact as
``ktrdr_export.json`` for the services to answer KTRDR with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training_engine.artifacts import artifact_prefix
from training_engine.atomic_files import write_new_version
from training_engine.dataset import PreparedDataset
from training_engine.errors import UnsafePathError
from training_engine.job import ClassificationReport, PartScore, TestReport, TrainingResult
from training_engine.ktrdr_inputs import KtrdrInputs, ktrdr_inputs
from training_engine.ktrdr_metadata import (
    engine_architecture,
    engine_input_names,
    features_file,
    ktrdr_config,
    metadata_file,
    metadata_v3_file,
)
from training_engine.ktrdr_weights import (
    KTRDR_ACTIVATIONS,
    KTRDR_CLASSES,
    InputFold,
    ktrdr_state_dict,
)
from training_engine.paths import path_inside
from training_engine.strategy import StrategyConfig

KTRDR_MODELS_SUBDIR = "ktrdr"
SUMMARY_FILE = "ktrdr_export.json"
V3_METADATA_FILE = "metadata_v3.json"
UNSUPPORTED_FILE = "KTRDR_UNSUPPORTED.txt"


def ktrdr_models_dir(models_dir: Path) -> Path:
    """The folder KTRDR's ``ModelStorage`` should use as its base path."""
    return Path(models_dir) / KTRDR_MODELS_SUBDIR


@dataclass(frozen=True)
class BacktestPlan:
    """KTRDR's view of a model's inputs, and why its backtester cannot run it (empty: it can).

    ``fold``: the standardisation of the membership inputs, for the first layer.
    """

    inputs: KtrdrInputs
    fold: InputFold | None
    problems: list[str]


def backtest_plan(
    strategy: StrategyConfig, model: nn.Module, data: PreparedDataset
) -> BacktestPlan:
    """What KTRDR's backtester needs to run the model as trained, or what stops it."""
    kind = strategy.model.type
    problems: list[str] = []
    if kind not in KTRDR_CLASSES:
        problems.append(f"model type {kind}: KTRDR's backtester builds mlp, lstm and gru only")
    elif kind == "mlp" and data.lookback > 1:
        problems.append(
            f"an MLP over {data.lookback} bars (lookback_periods): KTRDR's backtester feeds "
            "an MLP one bar; use lookback_periods 1, or an lstm or gru"
        )
    if kind == "mlp" and strategy.model.activation not in KTRDR_ACTIVATIONS:
        problems.append(
            f"activation {strategy.model.activation}: KTRDR's MLP has "
            f"{', '.join(sorted(KTRDR_ACTIVATIONS))}"
        )
    if not problems and _ktrdr_weights(strategy, model) is None:
        problems.append(f"the {kind} network's layers are not those KTRDR builds")
    inputs = ktrdr_inputs(strategy, data.feature_names)
    problems += inputs.problems
    fold = None
    if data.normalization is not None and not problems:
        stats = data.normalization
        fold = InputFold(stats.mean, stats.std, folded=[not raw for raw in inputs.raw])
        for index in fold.imprecise():
            problems.append(
                f"input {data.feature_names[index]} hardly varies on the train part (mean "
                f"{stats.mean[index]:.6g}, std {stats.std[index]:.3g}): its standardisation "
                "cannot be folded into KTRDR's float32 weights; leave it out"
            )
    return BacktestPlan(inputs, fold, problems)


def write_ktrdr_folder(
    models_dir: Path,
    strategy: StrategyConfig,
    model: nn.Module,
    data: PreparedDataset,
    summary: dict[str, Any],
) -> Path:
    """Write a new version of KTRDR's folder for a completed run and return it.

    Its ``latest`` link is left to :func:`point_latest`, once our own folder is written.

    Args:
        models_dir: the root of all model folders (KTRDR's are under ``ktrdr/``).
        strategy: the resolved strategy (its document as given becomes config.json).
        model: the trained model, in memory (the weights evaluated and saved).
        data: what it was trained on: feature names in order, normalisation, window shape.
        summary: :func:`ktrdr_summary` of the run (metrics.json is its training metrics).
    """
    # Resolved from models_dir: a linked ktrdr/ or strategy folder cannot lead the copy out.
    parent = path_inside(models_dir, KTRDR_MODELS_SUBDIR, strategy.name, what="strategy name")
    return write_new_version(
        parent,
        artifact_prefix(data.symbols, data.base_timeframe),
        lambda folder, version: _write_files(folder, version, strategy, model, data, summary),
    )


def _write_files(
    folder: Path,
    version: int,
    strategy: StrategyConfig,
    model: nn.Module,
    data: PreparedDataset,
    summary: dict[str, Any],
) -> None:
    """KTRDR's files of one version, into its staging folder (module docstring)."""
    plan = backtest_plan(strategy, model, data)
    if plan.problems:
        state = _ktrdr_weights(strategy, model)
        _write_text(folder / UNSUPPORTED_FILE, _unsupported_note(plan.problems))
    else:
        state = _ktrdr_weights(strategy, model, plan.fold)
        name = f"{strategy.name}_{artifact_prefix(data.symbols, data.base_timeframe)}_v{version}"
        training = summary["training_metrics"]
        metadata = metadata_v3_file(strategy, data, plan.inputs, name, training)
        _write_json(folder / V3_METADATA_FILE, metadata)
    weights = state or {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(weights, folder / "model.pt")
    _write_json(folder / "config.json", ktrdr_config(strategy, data))
    _write_json(folder / "metrics.json", summary["training_metrics"])
    inputs = None if plan.problems else plan.inputs
    _write_json(folder / "features.json", features_file(data, inputs))
    _write_json(folder / "metadata.json", metadata_file(strategy, data, version, summary))


def point_latest(folder: Path) -> None:
    """Point ``{SYMBOL}_{timeframe}_latest`` beside ``folder`` at it (relative, atomically)."""
    prefix = folder.name.rsplit("_v", 1)[0]
    link = folder.parent / f"{prefix}_latest"
    staging = link.with_name(f".{link.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(folder.name)
    os.replace(staging, link)


def write_summary(folder: Path, summary: dict[str, Any]) -> None:
    """Put the summary into our artifact's (staging) ``folder``, for :func:`read_summary`."""
    _write_json(folder / SUMMARY_FILE, summary)


def read_summary(model_path: str | Path | None) -> dict[str, Any] | None:
    """The summary ``model_folders.write_model_folders`` left in an artifact, or None."""
    if model_path is None:
        return None
    try:
        path = path_inside(Path(model_path), SUMMARY_FILE, what="summary")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnsafePathError):
        return None
    return data


def ktrdr_summary(
    strategy: StrategyConfig, model: nn.Module, data: PreparedDataset, result: TrainingResult
) -> dict[str, Any]:
    """What KTRDR's clients are told of a completed run: training and test metrics, model info.

    Read from the run's history and ``result.part_scores`` (the trainer scores the parts
    from the data it holds); nothing is loaded or prepared again. ``ktrdr_loadable``: KTRDR's
    network class for the model's type loads its weights; ``ktrdr_unsupported``: why KTRDR's
    backtester cannot run it (None when it can).
    """
    scores = result.part_scores
    history = result.history
    last = history[-1] if history else None
    best = max(history, key=lambda m: m.val_accuracy) if history else None
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    problems = backtest_plan(strategy, model, data).problems
    return {
        "training_metrics": {
            "epochs_trained": result.epochs_completed,
            "final_train_loss": last.train_loss if last else scores["train"].loss,
            "final_train_accuracy": scores["train"].accuracy,
            "final_val_loss": last.val_loss if last else scores["validation"].loss,
            "final_val_accuracy": last.val_accuracy if last else scores["validation"].accuracy,
            "best_val_accuracy": best.val_accuracy if best else scores["validation"].accuracy,
            "best_epoch": best.epoch if best else None,
            "final_learning_rate": last.learning_rate if last else None,
            "training_time": sum(m.epoch_seconds for m in history),
            "early_stopped": result.stopped_early,
            "history": {
                "train_loss": [m.train_loss for m in history],
                "val_loss": [m.val_loss for m in history],
                "val_accuracy": [m.val_accuracy for m in history],
            },
        },
        "test_metrics": _test_metrics(scores["test"], result.test_metrics),
        "model_info": {
            "model_type": strategy.model.type,
            "architecture": engine_architecture(strategy),
            "input_size": len(engine_input_names(data)),
            "parameters_count": parameters,
            "trainable_parameters": trainable,
            "ktrdr_loadable": _ktrdr_weights(strategy, model) is not None,
            "device": result.device,
        },
        # Why KTRDR's backtester cannot run the model as trained; None: it can.
        "ktrdr_unsupported": _unsupported_text(problems),
    }


def _ktrdr_weights(
    strategy: StrategyConfig, model: nn.Module, fold: InputFold | None = None
) -> dict[str, torch.Tensor] | None:
    """The weights under KTRDR's key names, or None where KTRDR has no network for them."""
    return ktrdr_state_dict(model, strategy.model.type, strategy.model.activation, fold)


def _unsupported_text(problems: list[str]) -> str | None:
    return "; ".join(problems) if problems else None


def _unsupported_note(problems: list[str]) -> str:
    lines = [f"- {problem}" for problem in problems]
    return "\n".join(
        [
            "KTRDR's backtester cannot run this model as it was trained, so this folder has",
            "no metadata_v3.json (KTRDR's ModelBundle.load needs it). Why:",
            *lines,
            "",
        ]
    )


def _test_metrics(score: PartScore, report: TestReport | None) -> dict[str, float]:
    """KTRDR's test metrics; a regression run has no precision, recall or F1 (0.0)."""
    classes = report if isinstance(report, ClassificationReport) else None
    return {
        "test_loss": score.loss,
        "test_accuracy": classes.accuracy if classes else score.accuracy,
        "precision": _mean(classes.precision) if classes else 0.0,
        "recall": _mean(classes.recall) if classes else 0.0,
        "f1_score": classes.macro_f1 if classes else 0.0,
    }


def _mean(values: dict[str, float]) -> float:
    return float(sum(values.values()) / len(values)) if values else 0.0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
