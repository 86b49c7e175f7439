"""Labels on hand-made series: 0 BUY, 1 HOLD, 2 SELL; no label from a truncated future."""

from __future__ import annotations

import numpy as np
import pandas as pd
from training_engine.labels import (
    BUY,
    HOLD,
    SELL,
    label_bars,
    lookahead_move_labels,
    threshold_return_labels,
)
from training_engine.strategy import LabelConfig


def test_zigzag_labels_by_the_larger_move_past_the_threshold() -> None:
    close = np.array([100.0, 101.0, 106.0, 103.0, 97.0, 96.0, 99.0, 100.0])
    labels = lookahead_move_labels(close, threshold=0.03, lookahead=2)
    # bar 0 sees 101, 106: +6%      -> BUY
    # bar 1 sees 106, 103: +5%      -> BUY
    # bar 2 sees 103, 97: -8.5%     -> SELL
    # bar 3 sees 97, 96: -6.8%      -> SELL
    # bar 4 sees 96, 99: +2%, -1%   -> HOLD
    # bar 5 sees 99, 100: +4.2%     -> BUY
    assert labels.tolist() == [BUY, BUY, SELL, SELL, HOLD, BUY]


def test_zigzag_move_both_ways_goes_to_the_larger_one() -> None:
    close = np.array([100.0, 95.0, 110.0])
    assert lookahead_move_labels(close, 0.03, 2).tolist() == [BUY]
    close = np.array([100.0, 104.0, 90.0])
    assert lookahead_move_labels(close, 0.03, 2).tolist() == [SELL]


def test_forward_return_labels_compare_the_return_over_the_horizon() -> None:
    close = np.array([100.0, 100.0, 102.0, 99.5, 98.5, 98.0])
    labels = threshold_return_labels(close, horizon=2, threshold=0.01)
    # 102/100 +2% BUY; 99.5/100 -0.5% HOLD; 98.5/102 -3.4% SELL; 98/99.5 -1.5% SELL
    assert labels.tolist() == [BUY, HOLD, SELL, SELL]


def test_bars_without_a_full_lookahead_get_no_label() -> None:
    index = pd.date_range("2024-01-01", periods=50, freq="1h", tz="UTC")
    close = np.linspace(100.0, 150.0, 50)
    frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close}, index)
    moves = label_bars(frame, LabelConfig(source="lookahead_move", label_lookahead=7)).targets
    forward = label_bars(frame, LabelConfig(source="forward_return", horizon=4)).targets
    assert np.isnan(moves[43:]).all() and not np.isnan(moves[:43]).any()
    assert np.isnan(forward[46:]).all() and not np.isnan(forward[:46]).any()
    assert forward[0] == (close[4] - close[0]) / close[0]


def test_the_sources_default_horizons_are_ktrdrs() -> None:
    assert LabelConfig(source="forward_return").forward_horizon == 20
    assert LabelConfig(source="context").forward_horizon == 5
    assert LabelConfig(source="regime").class_names == (
        "TRENDING_UP", "TRENDING_DOWN", "RANGING", "VOLATILE"
    )  # fmt: skip
    assert LabelConfig(source="forward_return").task == "regression"


def test_labels_ignore_prices_beyond_their_lookahead() -> None:
    close = np.array([100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    changed = close.copy()
    changed[5] = 50.0
    # bar 0 and 1 with lookahead 3 see at most bar 4
    assert (
        lookahead_move_labels(close, 0.02, 3)[:2].tolist()
        == lookahead_move_labels(changed, 0.02, 3)[:2].tolist()
    )
    assert len(lookahead_move_labels(close[:3], 0.02, 3)) == 0
