"""A model, data and result that give the same artifact on every machine (set weights and
metrics, nothing trained), and the artifact files written for them at commit 0a71f04."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from training_engine.dataset import NormalizationStats, PreparedDataset
from training_engine.evaluation import classification_report, majority_baseline_report
from training_engine.job import TrainingResult
from training_engine.models import build_model
from training_engine.progress import EpochMetrics
from training_engine.strategy import StrategyConfig

from tests.engine.synthetic import make_dataset, make_strategy

GOLDEN_ARTIFACT = Path(__file__).parent / "data" / "artifact_format_v1"
# Written anew by every run: left out of the comparison with the golden files.
VOLATILE_METADATA = ("created_at", "engine_version")

NORMALIZATION = NormalizationStats(
    mean=np.array([100.0, -2.0, 0.5, 7.0], dtype=np.float32),
    std=np.array([10.0, 0.5, 2.0, 3.0], dtype=np.float32),
)


def fixed_run() -> tuple[StrategyConfig, nn.Module, PreparedDataset, TrainingResult]:
    """The strategy, model, prepared data and result the golden artifact was written from."""
    strategy = make_strategy(epochs=2)
    data = replace(make_dataset(), normalization=NORMALIZATION)
    model = build_model(strategy.model, n_features=4, lookback=3)
    with torch.no_grad():
        for index, parameter in enumerate(model.parameters()):
            values = torch.linspace(-1.0, 1.0, parameter.numel()) * (index + 1) / 8
            parameter.copy_(values.reshape(parameter.shape))
    history = [
        EpochMetrics(1, 1.0986, 1.05, 0.4, 0.01, 0.5, 1200.0),
        EpochMetrics(2, 0.9, 0.95, 0.55, 0.01, 0.25, 2400.0),
    ]
    y_true = np.array([0, 1, 2, 1, 0, 2, 1, 1])
    result = TrainingResult(
        status="completed",
        device="cpu",
        epochs_completed=2,
        total_epochs=2,
        history=history,
        test_metrics=classification_report(y_true, np.array([0, 1, 1, 1, 0, 2, 2, 1]), 3),
        baseline_metrics=majority_baseline_report(np.array([1, 1, 0]), y_true, 3),
        feature_names=list(data.feature_names),
    )
    return strategy, model, data, result
