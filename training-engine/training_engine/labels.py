"""Training labels from future prices: 0 BUY, 1 HOLD, 2 SELL (KTRDR's numbering).

These are the only functions allowed to read the future, and they read exactly
``lookahead`` bars of it. A bar whose window runs past the end of the data gets
no label (it is dropped), never one computed from a truncated window.

- ``zigzag`` (threshold, lookahead): over the closes of bars t+1 .. t+lookahead,
  rise = max / close_t - 1 and fall = 1 - min / close_t. BUY when the rise is at
  least the threshold and larger than the fall; SELL when the fall is at least
  the threshold and larger than the rise; HOLD otherwise.
- ``forward_return`` (horizon, threshold): r = close_{t+horizon} / close_t - 1.
  BUY when r > threshold, SELL when r < -threshold, HOLD otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from training_engine.strategy import LabelConfig

BUY, HOLD, SELL = 0, 1, 2
CLASS_NAMES = ("BUY", "HOLD", "SELL")


def zigzag_labels(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    """Labels for the first ``len(close) - lookahead`` bars (int64)."""
    prices = np.asarray(close, dtype=np.float64)
    count = len(prices) - lookahead
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    future = sliding_window_view(prices[1:], lookahead)[:count]
    now = prices[:count]
    rise = future.max(axis=1) / now - 1.0
    fall = 1.0 - future.min(axis=1) / now
    labels = np.full(count, HOLD, dtype=np.int64)
    labels[(rise >= threshold) & (rise > fall)] = BUY
    labels[(fall >= threshold) & (fall > rise)] = SELL
    return labels


def forward_return_labels(close: np.ndarray, horizon: int, threshold: float) -> np.ndarray:
    """Labels for the first ``len(close) - horizon`` bars (int64)."""
    prices = np.asarray(close, dtype=np.float64)
    count = len(prices) - horizon
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    change = prices[horizon:] / prices[:count] - 1.0
    labels = np.full(count, HOLD, dtype=np.int64)
    labels[change > threshold] = BUY
    labels[change < -threshold] = SELL
    return labels


def compute_labels(close: pd.Series, config: LabelConfig) -> pd.Series:
    """Labels for every bar that has a full lookahead window, indexed like ``close``.

    The last ``config.lookahead`` bars are absent from the result.
    """
    values = close.to_numpy(dtype=np.float64)
    if config.source == "zigzag":
        labels = zigzag_labels(values, config.zigzag_threshold, config.label_lookahead)
    elif config.source == "forward_return":
        labels = forward_return_labels(values, config.horizon, config.threshold)
    else:
        raise ValueError(f"unknown label source {config.source!r}")
    return pd.Series(labels, index=close.index[: len(labels)], name="label", dtype="int64")
