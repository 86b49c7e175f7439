"""In-memory datasets with planted structure, and small strategies, for the trainer tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from training_engine.dataset import NormalizationStats, PreparedDataset, dataset_from_windows
from training_engine.job import TrainingJob
from training_engine.strategy import StrategyConfig, parse_strategy, with_overrides


def make_dataset(
    n_train: int = 600,
    n_val: int = 200,
    n_test: int = 200,
    lookback: int = 3,
    n_features: int = 4,
    threshold: float = 0.4,
    noise: float = 0.0,
) -> PreparedDataset:
    """Windows whose class follows the sign of the last bar's first feature (learnable).

    BUY above ``threshold``, SELL below ``-threshold``, HOLD between; ``noise`` blurs the
    signal the labels are drawn from (a larger ``threshold`` makes HOLD the majority).
    """
    rng = np.random.default_rng(0)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for n in (n_train, n_val, n_test):
        x = rng.normal(size=(n, lookback, n_features)).astype(np.float32)
        signal = x[:, -1, 0] + (rng.normal(scale=noise, size=n) if noise else 0.0)
        y = np.where(signal > threshold, 0, np.where(signal < -threshold, 2, 1)).astype(np.int64)
        parts.append((x, y))
    return dataset_from_windows(
        parts,
        feature_names=[f"f{i}" for i in range(n_features)],
        normalization=NormalizationStats(
            mean=np.zeros(n_features, dtype=np.float32), std=np.ones(n_features, dtype=np.float32)
        ),
        symbols=("AAPL",),
        base_timeframe="1h",
    )


def make_strategy(model: dict[str, Any] | None = None, **training: Any) -> StrategyConfig:
    """A CPU strategy with a small MLP; ``model`` and ``training`` override the defaults."""
    settings: dict[str, Any] = {
        "learning_rate": 0.01,
        "batch_size": 32,
        "epochs": 2,
        "optimizer": "adam",
        "device": "cpu",
        "seed": 3,
    }
    settings.update(training)
    return parse_strategy(
        {
            "name": "synthetic",
            "training_data": {
                "symbols": {"list": ["AAPL"]},
                "timeframes": {"list": ["1h"], "base_timeframe": "1h"},
            },
            "indicators": [{"name": "rsi", "period": 14}],
            "model": {
                "type": (model or {}).get("type", "mlp"),
                "architecture": {
                    "hidden_layers": [16, 8],
                    "dropout": 0.2,
                    **{k: v for k, v in (model or {}).items() if k != "type"},
                },
                "features": {"lookback_periods": 3},
                "training": settings,
            },
        }
    )


def cpu_job(strategy: StrategyConfig, data_dir: Path, tmp_path: Path, epochs: int) -> TrainingJob:
    """A job training ``strategy`` for ``epochs`` on the CPU: models under ``tmp_path/models``,
    its checkpoint ``tmp_path/ck.pt``."""
    return TrainingJob(
        strategy=with_overrides(strategy, training={"epochs": epochs, "device": "cpu"}),
        data_dir=data_dir,
        models_dir=tmp_path / "models",
        checkpoint_path=tmp_path / "ck.pt",
    )
