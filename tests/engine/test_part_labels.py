"""Each part is labelled from its own prices: no later price changes a label inside it.

For every label source, through ``prepare_dataset``: prices after a part's end
(``SplitRange.labels_end``) are scrambled and the part's samples and labels must
stay the same, while the same labeller run over the whole series (KTRDR's way)
does see the change.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from training_engine.data import load_ohlcv
from training_engine.dataset import PreparedDataset, prepare_dataset
from training_engine.labels import label_bars
from training_engine.strategy import StrategyConfig, parse_strategy
from training_engine.windows import gather_windows

LABELS: dict[str, dict[str, Any]] = {
    "zigzag": {"source": "zigzag", "zigzag_threshold": 0.02, "label_lookahead": 20},
    "forward_return": {"source": "forward_return", "horizon": 12},
    "context": {"source": "context", "horizon": 5},
    "triple_barrier": {
        "source": "triple_barrier",
        "max_holding_period": 24,
        "vol_span": 20,
        "compute_weights": True,
    },
    "triple_barrier_cusum": {
        "source": "triple_barrier",
        "max_holding_period": 24,
        "vol_span": 20,
        "cusum_threshold": 0.0,
    },
    "regime": {"source": "regime", "vol_lookback": 60},
    "multi_scale_regime": {"source": "multi_scale_regime", "macro_atr_mult": 2.0},
    "lookahead_move": {"source": "lookahead_move", "threshold": 0.01, "label_lookahead": 10},
}


def _strategy(labels: dict[str, Any]) -> StrategyConfig:
    return parse_strategy(
        {
            "name": "parts",
            "training_data": {"symbols": ["AAPL"], "timeframes": ["1h"]},
            "indicators": [{"name": "rsi", "period": 14}],
            "training": {"labels": labels},
        }
    )


def _scramble_after(data_dir: Path, end: pd.Timestamp, level: float) -> None:
    """Move every price after ``end`` to ``level`` times itself, with noise."""
    path = data_dir / "AAPL_1h.csv"
    frame = pd.read_csv(path)
    late = (pd.to_datetime(frame["timestamp"], utc=True) > end).to_numpy()
    factor = level * np.random.default_rng(5).uniform(0.8, 1.25, size=int(late.sum()))
    for column in ("open", "high", "low", "close"):
        frame.loc[late, column] = frame.loc[late, column] * factor
    frame.to_csv(path, index=False)


def _part(data: PreparedDataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "train":
        return gather_windows(data, "train"), data.y_train
    return gather_windows(data, "val"), data.y_val


@pytest.mark.parametrize("source", sorted(LABELS))
@pytest.mark.parametrize("part", ["train", "validation"])
def test_prices_after_a_parts_end_change_no_label_inside_it(
    source: str, part: str, sample_data_dir: Path, tmp_path: Path
) -> None:
    strategy = _strategy(LABELS[source])
    original = prepare_dataset(strategy, sample_data_dir)
    split = next(r for r in original.splits if r.part == part)
    assert split.labels_end is not None
    whole = label_bars(load_ohlcv(sample_data_dir, "AAPL", "1h"), strategy.labels).targets
    index = load_ohlcv(sample_data_dir, "AAPL", "1h").index
    inside = (index >= split.first_bar) & (index <= split.labels_end)
    seen_by_whole_series = False
    for level in (0.5, 2.0):
        copy = tmp_path / f"data_{level}"
        shutil.copytree(sample_data_dir, copy)
        _scramble_after(copy, split.labels_end, level)
        changed = prepare_dataset(strategy, copy)

        assert np.array_equal(_part(original, part)[1], _part(changed, part)[1])
        assert np.array_equal(_part(original, part)[0], _part(changed, part)[0])
        if original.w_train is not None and part == "train":
            assert changed.w_train is not None
            assert np.array_equal(original.w_train, changed.w_train)
        # A labeller given the whole series (KTRDR's way) does see the scrambling.
        whole_changed = label_bars(load_ohlcv(copy, "AAPL", "1h"), strategy.labels).targets
        seen_by_whole_series |= not np.array_equal(
            whole[inside], whole_changed[inside], equal_nan=True
        )
    assert seen_by_whole_series


@pytest.mark.parametrize("source", sorted(LABELS))
def test_each_source_gives_its_own_classes_or_a_regression_target(
    source: str, sample_data_dir: Path
) -> None:
    data = prepare_dataset(_strategy(LABELS[source]), sample_data_dir)
    if source == "forward_return":
        assert data.is_regression and data.y_train.dtype == np.float32
        assert np.isfinite(data.y_train).all()
        return
    n_classes = len(data.class_names)
    assert n_classes == (4 if "regime" in source else 3)
    assert data.y_train.dtype == np.int64
    assert set(np.unique(data.y_train)) <= set(range(n_classes))
    assert len(np.unique(data.y_train)) >= 2
