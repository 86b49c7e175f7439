"""A completed run's model in KTRDR's folder layout, and the summary KTRDR's clients read.

Written by ``model_folders.write_model_folders`` from the run's model and data in memory,
under ``{models_dir}/ktrdr/`` (point KTRDR's ``ModelStorage(base_path=...)`` there)::

    {strategy}/{SYMBOL}_{timeframe}_v{N}/   model.pt (a state dict), config.json, metrics.json,
                                            features.json, metadata.json (is_trained: true)
    {strategy}/{SYMBOL}_{timeframe}_latest  relative link to the newest version

An MLP with KTRDR's activations gets KTRDR's ``nn.Sequential`` key names (``0``, ``3``,
``6``, ...: Linear, activation, Dropout per hidden layer), so KTRDR's ``MLPTradingModel``
loads it with ``strict=True``; other models keep our key names (KTRDR has no class for
them). Any number of classes (``num_classes``) and a regression head (one output,
``output_format: regression``) are written as KTRDR's MLP builds them. The summary
(train/validation/test loss and accuracy, model info) is also written into our artifact
as ``ktrdr_export.json`` for the services to answer KTRDR with.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training_engine.artifacts import artifact_prefix
from training_engine.atomic_files import write_new_version
from training_engine.dataset import NormalizationStats, PreparedDataset
from training_engine.errors import UnsafePathError
from training_engine.job import ClassificationReport, PartScore, TestReport, TrainingResult
from training_engine.paths import path_inside
from training_engine.strategy import StrategyConfig

KTRDR_MODELS_SUBDIR = "ktrdr"
SUMMARY_FILE = "ktrdr_export.json"
KTRDR_ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", "leaky_relu"})
KTRDR_MLP_CLASS = "MLPTradingModel"
_LAYERS_PER_HIDDEN = 3  # Linear, activation, Dropout in KTRDR's Sequential


def ktrdr_models_dir(models_dir: Path) -> Path:
    """The folder KTRDR's ``ModelStorage`` should use as its base path."""
    return Path(models_dir) / KTRDR_MODELS_SUBDIR


def ktrdr_state_dict(model: nn.Module, activation: str) -> dict[str, torch.Tensor] | None:
    """Our MLP's weights under KTRDR's MLP key names, or None when KTRDR cannot load them."""
    if activation not in KTRDR_ACTIVATIONS:
        return None
    modules = list(model.modules())
    if not any(isinstance(m, nn.Flatten) for m in modules):
        return None
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    parametrised = [m for m in modules if list(m.parameters(recurse=False))]
    if not linears or len(parametrised) != len(linears):
        return None
    state: dict[str, torch.Tensor] = {}
    for index, linear in enumerate(linears):
        key = _LAYERS_PER_HIDDEN * index
        state[f"{key}.weight"] = linear.weight.detach().cpu().clone()
        state[f"{key}.bias"] = linear.bias.detach().cpu().clone()
    return state


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
    """KTRDR's files of one version, into its staging folder.

    Every file KTRDR reads of a model is written here, from the resolved strategy, the
    feature names in order, the normalisation statistics and the model in memory: the
    place for ``metadata_v3.json`` (issue 19).
    """
    kt_state = _ktrdr_weights(strategy, model)
    state = kt_state or {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, folder / "model.pt")
    _write_json(folder / "config.json", _ktrdr_config(strategy, data.class_names))
    _write_json(folder / "metrics.json", summary["training_metrics"])
    _write_json(folder / "features.json", _features(_input_names(data), data.normalization))
    metadata = _metadata(strategy, data, version, summary, loadable=kt_state is not None)
    _write_json(folder / "metadata.json", metadata)


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
    from the data it holds); nothing is loaded or prepared again.
    """
    scores = result.part_scores
    history = result.history
    last = history[-1] if history else None
    best = max(history, key=lambda m: m.val_accuracy) if history else None
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
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
            "architecture": _architecture(strategy),
            "input_size": len(_input_names(data)),
            "parameters_count": parameters,
            "trainable_parameters": trainable,
            "ktrdr_loadable": _ktrdr_weights(strategy, model) is not None,
            "device": result.device,
        },
    }


def _ktrdr_weights(strategy: StrategyConfig, model: nn.Module) -> dict[str, torch.Tensor] | None:
    """The weights under KTRDR's MLP key names, or None where KTRDR has no class to load them."""
    if strategy.model.type != "mlp":
        return None
    return ktrdr_state_dict(model, strategy.model.activation)


def _input_names(data: PreparedDataset) -> list[str]:
    """``rsi_14[t-2]``, ...: one name per network input, oldest bar first as the model flattens."""
    lags = range(data.lookback - 1, -1, -1)
    return [f"{name}[t-{lag}]" for lag in lags for name in data.feature_names]


def _architecture(strategy: StrategyConfig) -> dict[str, Any]:
    return {
        "hidden_layers": list(strategy.model.hidden_layers),
        "activation": strategy.model.activation,
        "dropout": strategy.model.dropout,
    }


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


def _ktrdr_config(strategy: StrategyConfig, class_names: tuple[str, ...]) -> dict[str, Any]:
    """The strategy as KTRDR keeps it, with the architecture its MLP is built from."""
    config: dict[str, Any] = dict(strategy.raw)
    model = dict(config.get("model") or {})
    model["type"] = strategy.model.type
    model["architecture"] = _architecture(strategy)
    model["output_format"] = "classification" if class_names else "regression"
    model["num_classes"] = len(class_names) if class_names else 1
    config["name"] = strategy.name
    config["model"] = model
    # KTRDR before its HEAD builds the network from config.json's top-level architecture.
    config["architecture"] = model["architecture"]
    return config


def _features(input_names: list[str], normalization: NormalizationStats | None) -> dict[str, Any]:
    scaling: dict[str, Any] = {"requires_scaling": False, "reason": "not_scaled"}
    if normalization is not None:
        # KTRDR expects a pickled scikit-learn scaler; the statistics are given instead.
        scaling = {
            "requires_scaling": True,
            "scaler_type": "standard",
            "per_bar_feature": normalization.to_dict(),
        }
    return {
        "model_version": "mixed_features_v1",
        "feature_type": "mixed_features",
        "feature_names": input_names,
        "feature_count": len(input_names),
        "scaling_info": scaling,
        "feature_importance": {},
    }


def _metadata(
    strategy: StrategyConfig,
    data: PreparedDataset,
    version: int,
    summary: dict[str, Any],
    *,
    loadable: bool,
) -> dict[str, Any]:
    training = summary["training_metrics"]
    return {
        "strategy_name": strategy.name,
        "symbol": "-".join(data.symbols),
        "timeframe": data.base_timeframe,
        "created_at": datetime.now().isoformat(),
        "model_type": KTRDR_MLP_CLASS if loadable else strategy.model.type,
        "model_version": f"v{version}",
        "architecture_type": "mixed_features",
        "input_size": summary["model_info"]["input_size"],
        "pytorch_version": torch.__version__,
        "is_trained": True,
        "training_summary": {
            "epochs": training["epochs_trained"],
            "final_accuracy": training["final_train_accuracy"],
            "best_val_accuracy": training["best_val_accuracy"],
        },
        "feature_engineering": {
            "removed": False,
            "scaler_required": data.normalization is not None,
            "fuzzy_only": False,
        },
        "ktrdr_loadable": loadable,
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
