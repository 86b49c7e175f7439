"""Fuzzy sets written for KTRDR fire on a sensible share of real-looking bars.

KTRDR's membership parameters mean what KTRDR's values mean: RSI and stochastic 0..100,
MACD's main line in price units, SMA as close / average (v1/v2 files), ADX 0..100. Fed
those values, every set of a KTRDR-style strategy is non-zero on a fair share of bars
of an hourly EURUSD-like series (the engine's older scale-free SMA fed 0.0% here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from training_engine.features import compute_features
from training_engine.strategy import parse_strategy


def _tri(a: float, b: float, c: float) -> dict[str, Any]:
    return {"type": "triangular", "parameters": [a, b, c]}


KTRDR_STYLE = {
    "name": "ktrdr_style",
    "training_data": {"symbols": ["EURUSD"], "timeframes": ["1h"]},
    "indicators": [
        {"name": "rsi", "period": 14},
        {"name": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9},
        {"name": "sma", "period": 20},
        {"name": "stoch", "k_period": 14, "d_period": 3},
        {"name": "adx", "period": 14},
    ],
    "fuzzy_sets": {
        "rsi": {"oversold": _tri(0, 20, 35), "neutral": _tri(30, 50, 70)},
        "macd": {"negative": _tri(-0.01, -0.002, 0), "positive": _tri(0, 0.002, 0.01)},
        "sma": {"below": _tri(0.98, 0.995, 1.0), "above": _tri(1.0, 1.005, 1.02)},
        "stoch": {"low": _tri(0, 10, 30), "high": _tri(70, 90, 100)},
        "adx": {"weak": _tri(0, 10, 25), "strong": _tri(20, 40, 100)},
    },
}


def _eurusd_like(n: int, seed: int) -> pd.DataFrame:
    """Hourly bars around 1.10 with ~0.1% moves, wicks and a session volume pattern."""
    rng = np.random.default_rng(seed)
    close = 1.10 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.0007))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0006, (2, n))) * close
    hours = np.arange(n) % 24
    volume = 1000 + 800 * np.sin(np.pi * hours / 24) ** 2 + rng.integers(0, 200, n)
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "volume": volume.astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    )


@pytest.mark.parametrize("seed", [3, 4])
def test_every_fuzzy_set_of_a_ktrdr_style_strategy_fires_on_real_looking_bars(seed: int) -> None:
    features = compute_features(parse_strategy(KTRDR_STYLE), {"1h": _eurusd_like(2000, seed)})
    assert len(features.columns) == 10  # memberships only: KTRDR's network inputs
    shares = {name: float((features[name] > 0).mean()) for name in features.columns}
    quiet = {name: share for name, share in shares.items() if not 0.03 <= share <= 0.97}
    assert quiet == {}
