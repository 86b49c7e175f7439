"""Our trained-model directories: written once, atomically, and loaded back ready to predict.

Layout of ``{models_dir}/{strategy}/{SYMBOLS}_{timeframe}_v{N}/``::

    model.safetensors   the weights
    strategy.yaml       {resolved: the validated config, source: the strategy file as given}
    metadata.json       features, normalisation, model config, metrics, engine version, ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from training_engine.atomic_files import write_new_version
from training_engine.bar_predictions import BarFrames, predict_bars
from training_engine.dataset import NormalizationStats, PreparedDataset
from training_engine.device import resolve_device
from training_engine.errors import ArtifactError, StrategyConfigError, UnsafePathError
from training_engine.job import TrainingResult
from training_engine.models import batched_logits, build_model
from training_engine.paths import path_inside
from training_engine.strategy import (
    ModelConfig,
    StrategyConfig,
    strategy_from_dict,
    strategy_to_dict,
)
from training_engine.strategy.names import CLASS_NAMES

WEIGHTS_FILE = "model.safetensors"
STRATEGY_FILE = "strategy.yaml"
METADATA_FILE = "metadata.json"
ARTIFACT_FORMAT_VERSION = 1


def artifact_prefix(symbols: tuple[str, ...], base_timeframe: str) -> str:
    """``AAPL-MSFT_1h``: the name of a model directory without its version suffix."""
    return f"{'-'.join(symbols)}_{base_timeframe}"


def save_model_artifact(
    models_dir: Path,
    strategy: StrategyConfig,
    model: nn.Module,
    data: PreparedDataset,
    result: TrainingResult,
) -> Path:
    """Write a new versioned model directory (our layout alone) and return its path.

    A completed run writes it through ``model_folders.write_model_folders``, with KTRDR's
    copy; the version is the next free ``N`` (``atomic_files.write_new_version``).

    Args:
        models_dir: the root of all model directories.
        strategy: the strategy trained (its name, model config and source are saved).
        model: the trained model.
        data: the data it was trained on (features, normalisation, window shape, symbols).
        result: the run's history and test metrics.
    """
    return write_new_version(
        artifact_parent(models_dir, strategy),
        artifact_prefix(data.symbols, data.base_timeframe),
        lambda folder, _version: write_artifact_files(folder, strategy, model, data, result),
    )


def artifact_parent(models_dir: Path, strategy: StrategyConfig) -> Path:
    """``{models_dir}/{strategy}``: where a strategy's versioned model directories go."""
    return path_inside(Path(models_dir), strategy.name, what="strategy name")


def write_artifact_files(
    folder: Path,
    strategy: StrategyConfig,
    model: nn.Module,
    data: PreparedDataset,
    result: TrainingResult,
    *,
    model_id: str | None = None,
) -> None:
    """Write our three files into ``folder`` (a staging folder: see ``write_new_version``).

    ``model_id`` (``model_folders.new_model_id``) is written into the metadata when given.
    """
    from training_engine import __version__

    test_metrics, baseline_metrics = result.test_metrics, result.baseline_metrics
    metadata = {
        "format_version": ARTIFACT_FORMAT_VERSION,
        "engine_version": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        "strategy_name": strategy.name,
        "symbols": list(data.symbols),
        "base_timeframe": data.base_timeframe,
        "feature_names": list(data.feature_names),
        "normalization": data.normalization.to_dict() if data.normalization is not None else None,
        "model_config": strategy.model.model_dump(mode="json"),
        "n_features": data.n_features,
        "lookback": data.lookback,
        "class_names": list(data.class_names),
        "history": [asdict(m) for m in result.history],
        "test_metrics": asdict(test_metrics) if test_metrics is not None else None,
        "baseline_metrics": asdict(baseline_metrics) if baseline_metrics is not None else None,
        # Added after format 1 was pinned: only written when there is something to say.
        **({"evaluation": result.evaluation} if result.evaluation else {}),
        **({"model_id": model_id} if model_id else {}),
    }
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(folder / WEIGHTS_FILE))
    strategy_doc = {"resolved": strategy_to_dict(strategy), "source": dict(strategy.raw)}
    (folder / STRATEGY_FILE).write_text(
        yaml.safe_dump(strategy_doc, sort_keys=False), encoding="utf-8"
    )
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def read_model_evaluation(path: Path | str | None) -> dict[str, Any] | None:
    """The ``evaluation`` a model directory's metadata holds; None when it has none or is gone."""
    if path is None:
        return None
    try:
        metadata_file = path_inside(Path(path), METADATA_FILE, what="metadata")
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnsafePathError):
        return None
    evaluation = metadata.get("evaluation") if isinstance(metadata, dict) else None
    return evaluation if isinstance(evaluation, dict) else None


@dataclass(slots=True)
class TrainedModel:
    """A saved model loaded back: predicts from RAW windows (normalises them itself)."""

    model: nn.Module
    feature_names: list[str]
    normalization: NormalizationStats | None
    strategy: StrategyConfig
    metadata: dict[str, Any]
    device: torch.device
    path: Path

    @property
    def lookback(self) -> int:
        return int(self.metadata["lookback"])

    @property
    def class_names(self) -> list[str]:
        """The classes in output order; empty for a regression target."""
        return list(self.metadata.get("class_names", CLASS_NAMES))

    def predict_bars(self, bars: BarFrames, context_dir: Path | None = None) -> pd.DataFrame:
        """Predictions per bar from OHLCV frames of one symbol (``bar_predictions``)."""
        return predict_bars(self, bars, context_dir=context_dir)

    def predict_proba(self, x_raw: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n, classes]`` (``class_names``) for raw windows
        ``[n, lookback, f]``.

        Raises:
            ArtifactError: the windows do not have the shape the model was trained on, or
                the model predicts a value (a regression target: :meth:`predict_values`).
        """
        if not self.class_names:
            raise ArtifactError("a regression model has no class probabilities: predict_values")
        return torch.softmax(self._outputs(x_raw), dim=1).cpu().numpy()

    def predict_values(self, x_raw: np.ndarray) -> np.ndarray:
        """The predicted value ``[n]`` of a regression model for raw windows.

        Raises:
            ArtifactError: the windows have another shape, or the model predicts classes.
        """
        if self.class_names:
            raise ArtifactError("a classification model predicts classes: predict_proba")
        values: np.ndarray = self._outputs(x_raw)[:, 0].cpu().numpy()
        return values

    def _outputs(self, x_raw: np.ndarray) -> torch.Tensor:
        """The network's outputs for raw windows, normalised as in training."""
        x = np.asarray(x_raw, dtype=np.float32)
        expected = (self.lookback, len(self.feature_names))
        if x.ndim != 3 or x.shape[1:] != expected:
            raise ArtifactError(
                f"expected windows of shape [n, {expected[0]}, {expected[1]}], got {list(x.shape)}"
            )
        if self.normalization is not None:
            x = self.normalization.apply(x).astype(np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        return batched_logits(self.model, tensor)

    def predict(self, x_raw: np.ndarray) -> np.ndarray:
        """The most likely class per window (its index in ``class_names``)."""
        predictions: np.ndarray = self.predict_proba(x_raw).argmax(axis=1)
        return predictions


def load_trained_model(path: Path, device: str = "cpu") -> TrainedModel:
    """Load a model directory written by :func:`save_model_artifact`.

    Args:
        path: the versioned model directory.
        device: where to put the model (``auto``, ``cpu``, ``cuda``, ...).

    Raises:
        ArtifactError: the directory or one of its files is missing or unreadable.
        DeviceUnavailableError: the device is not available.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"model directory not found: {path}")
    missing = [n for n in (WEIGHTS_FILE, STRATEGY_FILE, METADATA_FILE) if not (path / n).is_file()]
    if missing:
        raise ArtifactError(f"model directory {path} is incomplete: missing {', '.join(missing)}")
    target = resolve_device(device)
    try:
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        strategy_doc = yaml.safe_load((path / STRATEGY_FILE).read_text(encoding="utf-8"))
        strategy = strategy_from_dict(strategy_doc["resolved"], strategy_doc.get("source"))
        model_config = _model_config(metadata["model_config"])
        outputs = len(metadata.get("class_names", CLASS_NAMES)) or 1  # 1: a regression target
        model = build_model(
            model_config, int(metadata["n_features"]), int(metadata["lookback"]), outputs
        )
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        RuntimeError,
        yaml.YAMLError,
        SafetensorError,
        StrategyConfigError,
    ) as exc:
        raise ArtifactError(f"model directory {path} cannot be loaded: {exc}") from exc
    norm = metadata.get("normalization")
    return TrainedModel(
        model=model.to(target).eval(),
        feature_names=list(metadata["feature_names"]),
        normalization=NormalizationStats.from_dict(norm) if norm is not None else None,
        strategy=strategy,
        metadata=metadata,
        device=target,
        path=path,
    )


def _model_config(data: Mapping[str, Any]) -> ModelConfig:
    return ModelConfig.model_validate(data)
