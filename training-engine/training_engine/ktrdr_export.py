"""A completed run's model in KTRDR's folder layout, and the summary KTRDR's clients read.

Written after the run, from our artifact, under ``{models_dir}/ktrdr/`` (point KTRDR's
``ModelStorage(base_path=...)`` there)::

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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training_engine.artifacts import load_trained_model
from training_engine.errors import UnsafePathError
from training_engine.job import ClassificationReport, TestReport, TrainingJob, TrainingResult
from training_engine.models import batched_logits
from training_engine.paths import path_inside
from training_engine.trainer import prepare_job_data
from training_engine.windows import WindowedRows, to_device

KTRDR_MODELS_SUBDIR = "ktrdr"
SUMMARY_FILE = "ktrdr_export.json"
KTRDR_ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", "leaky_relu"})
KTRDR_MLP_CLASS = "MLPTradingModel"
_LAYERS_PER_HIDDEN = 3  # Linear, activation, Dropout in KTRDR's Sequential


@dataclass(frozen=True, slots=True)
class SplitScore:
    """Loss and accuracy of the trained model on one split.

    Classes: cross-entropy and accuracy; a regression target: mean squared error and
    directional accuracy (the share of samples whose sign is right).
    """

    loss: float
    accuracy: float


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


def score_split(model: nn.Module, x: WindowedRows, y: torch.Tensor) -> SplitScore:
    """Loss and accuracy of ``model`` on the normalised windows ``x`` with targets ``y``."""
    if len(y) == 0:
        return SplitScore(loss=0.0, accuracy=0.0)
    outputs = batched_logits(model, x).float().cpu()
    targets = y.cpu()
    if targets.is_floating_point():  # a regression target: one output per sample
        values = outputs[:, 0]
        loss = float(F.mse_loss(values, targets).item())
        accuracy = float((torch.sign(values) == torch.sign(targets)).float().mean().item())
        return SplitScore(loss=loss, accuracy=accuracy)
    loss = float(F.cross_entropy(outputs, targets).item())
    accuracy = float((outputs.argmax(dim=1) == targets).float().mean().item())
    return SplitScore(loss=loss, accuracy=accuracy)


def export_for_ktrdr(job: TrainingJob, result: TrainingResult) -> Path:
    """Write KTRDR's model folder and our artifact's summary for a completed run.

    Args:
        job: the run's job (its data is prepared again to score the splits).
        result: the completed result with ``model_path``.

    Returns:
        The new KTRDR model folder.
    """
    if result.status != "completed" or result.model_path is None:
        raise ValueError("only a completed run with a saved model can be exported")
    trained = load_trained_model(result.model_path)
    data = prepare_job_data(job)
    parts = to_device(data, next(trained.model.parameters()).device)
    scores = {
        "train": score_split(trained.model, parts.x_train, parts.y_train),
        "validation": score_split(trained.model, parts.x_val, parts.y_val),
        "test": score_split(trained.model, parts.x_test, parts.y_test),
    }
    strategy = job.strategy
    lags = range(data.lookback - 1, -1, -1)  # oldest bar first, as the model flattens
    input_names = [f"{name}[t-{lag}]" for lag in lags for name in data.feature_names]
    kt_state = (
        ktrdr_state_dict(trained.model, strategy.model.activation)
        if strategy.model.type == "mlp"
        else None
    )
    summary = _summary(job, result, trained.model, scores, len(input_names), kt_state is not None)
    # Resolved inside models_dir: a linked ktrdr/ or strategy folder cannot lead the copy out.
    parent = path_inside(job.models_dir, KTRDR_MODELS_SUBDIR, strategy.name, what="strategy name")
    prefix = f"{'-'.join(data.symbols)}_{data.base_timeframe}"
    folder, version = _new_version_dir(parent, prefix)
    state = kt_state or {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
    torch.save(state, folder / "model.pt")
    _write_json(folder / "config.json", _ktrdr_config(job, trained.metadata))
    _write_json(folder / "metrics.json", summary["training_metrics"])
    _write_json(folder / "features.json", _features(input_names, trained.normalization))
    metadata = _metadata(job, data.symbols, data.base_timeframe, version, summary, kt_state)
    metadata["feature_engineering"]["scaler_required"] = trained.normalization is not None
    _write_json(folder / "metadata.json", metadata)
    _point_latest(parent / f"{prefix}_latest", folder.name)
    summary["ktrdr_model_path"] = str(folder)
    _write_json(Path(result.model_path) / SUMMARY_FILE, summary)
    return folder


def read_summary(model_path: str | Path | None) -> dict[str, Any] | None:
    """The summary :func:`export_for_ktrdr` left in an artifact, or None."""
    if model_path is None:
        return None
    try:
        path = path_inside(Path(model_path), SUMMARY_FILE, what="summary")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnsafePathError):
        return None
    return data


def _summary(
    job: TrainingJob,
    result: TrainingResult,
    model: nn.Module,
    scores: dict[str, SplitScore],
    input_size: int,
    loadable: bool,
) -> dict[str, Any]:
    history = result.history
    last = history[-1] if history else None
    best = max(history, key=lambda m: m.val_accuracy) if history else None
    report = result.test_metrics
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
        "test_metrics": _test_metrics(scores["test"], report),
        "model_info": {
            "model_type": job.strategy.model.type,
            "architecture": {
                "hidden_layers": list(job.strategy.model.hidden_layers),
                "activation": job.strategy.model.activation,
                "dropout": job.strategy.model.dropout,
            },
            "input_size": input_size,
            "parameters_count": parameters,
            "trainable_parameters": trainable,
            "ktrdr_loadable": loadable,
            "device": result.device,
        },
    }


def _test_metrics(score: SplitScore, report: TestReport | None) -> dict[str, float]:
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


def _new_version_dir(parent: Path, prefix: str) -> tuple[Path, int]:
    """Reserve ``{prefix}_v{N}`` with N one above the highest existing version."""
    parent.mkdir(parents=True, exist_ok=True)
    versions = [
        int(p.name.rsplit("_v", 1)[1])
        for p in parent.glob(f"{prefix}_v*")
        if p.name.rsplit("_v", 1)[1].isdigit()
    ]
    version = max(versions, default=0) + 1
    while True:
        folder = path_inside(parent, f"{prefix}_v{version}", what="model folder")
        try:
            folder.mkdir()
        except FileExistsError:
            version += 1
            continue
        return folder, version


def _point_latest(link: Path, target_name: str) -> None:
    """Replace the ``latest`` link atomically with a relative one."""
    staging = link.with_name(f".{link.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target_name)
    os.replace(staging, link)


def _ktrdr_config(job: TrainingJob, artifact_metadata: dict[str, Any]) -> dict[str, Any]:
    """The strategy as KTRDR keeps it, with the architecture its MLP is built from."""
    config: dict[str, Any] = dict(job.strategy.raw)
    model = dict(config.get("model") or {})
    model["type"] = job.strategy.model.type
    model["architecture"] = {
        "hidden_layers": list(job.strategy.model.hidden_layers),
        "activation": job.strategy.model.activation,
        "dropout": job.strategy.model.dropout,
    }
    class_names = artifact_metadata.get("class_names", ("BUY", "HOLD", "SELL"))
    model["output_format"] = "classification" if class_names else "regression"
    model["num_classes"] = len(class_names) if class_names else 1
    config["name"] = job.strategy.name
    config["model"] = model
    # KTRDR before its HEAD builds the network from config.json's top-level architecture.
    config["architecture"] = model["architecture"]
    return config


def _features(input_names: list[str], normalization: Any) -> dict[str, Any]:
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
    job: TrainingJob,
    symbols: tuple[str, ...],
    timeframe: str,
    version: int,
    summary: dict[str, Any],
    kt_state: dict[str, torch.Tensor] | None,
) -> dict[str, Any]:
    training = summary["training_metrics"]
    info = summary["model_info"]
    return {
        "strategy_name": job.strategy.name,
        "symbol": "-".join(symbols),
        "timeframe": timeframe,
        "created_at": datetime.now().isoformat(),
        "model_type": KTRDR_MLP_CLASS if kt_state is not None else job.strategy.model.type,
        "model_version": f"v{version}",
        "architecture_type": "mixed_features",
        "input_size": info["input_size"],
        "pytorch_version": torch.__version__,
        "is_trained": True,
        "training_summary": {
            "epochs": training["epochs_trained"],
            "final_accuracy": training["final_train_accuracy"],
            "best_val_accuracy": training["best_val_accuracy"],
        },
        "feature_engineering": {"removed": False, "scaler_required": True, "fuzzy_only": False},
        "ktrdr_loadable": kt_state is not None,
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
