"""Real examples of an inline strategy and of training overrides, shown in ``/docs``."""

from __future__ import annotations

from typing import Any

STRATEGY_EXAMPLE: dict[str, Any] = {
    "name": "rsi_mlp",
    "description": "A small MLP on RSI and MACD of hourly bars, labelled by 2% zigzag swings.",
    "training_data": {
        "symbols": {"mode": "single_symbol", "list": ["AAPL"]},
        "timeframes": {"mode": "single_timeframe", "list": ["1h"], "base_timeframe": "1h"},
    },
    "indicators": [
        {"name": "rsi", "period": 14, "source": "close"},
        {"name": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9},
    ],
    "fuzzy_sets": {
        "rsi_14": {
            "oversold": {"type": "triangular", "parameters": [0, 0, 35]},
            "overbought": {"type": "triangular", "parameters": [65, 100, 100]},
        }
    },
    "model": {
        "type": "mlp",
        "architecture": {"hidden_layers": [32, 16], "activation": "relu", "dropout": 0.1},
        "features": {"lookback_periods": 2},
        "training": {"learning_rate": 0.003, "batch_size": 64, "epochs": 10},
    },
    "training": {
        "labels": {"source": "zigzag", "zigzag_threshold": 0.02, "label_lookahead": 12},
        "data_split": {"train": 0.6, "validation": 0.2, "test": 0.2},
    },
}

OVERRIDES_EXAMPLE: dict[str, Any] = {
    "epochs": 5,
    "batch_size": 128,
    "learning_rate": 0.001,
    "early_stopping": {"patience": 3},
    "device": "auto",
    "seed": 7,
}
