"""Features: no look-ahead, multi-timeframe alignment on closed bars only, stable names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_engine.data import load_ohlcv
from training_engine.dataset import compute_features
from training_engine.errors import DataValidationError
from training_engine.features import align_to_base
from training_engine.sample_data import resample_ohlcv
from training_engine.strategy import StrategyConfig, parse_strategy

from tests.engine.golden.strategy_cases import features_test


def _strategy(**overrides: object) -> StrategyConfig:
    return features_test(**overrides)


@pytest.fixture(scope="module")
def frames(sample_data_dir: Path) -> dict[str, pd.DataFrame]:
    return {
        tf: load_ohlcv(sample_data_dir, "AAPL", tf).iloc[: 1200 // (4 if tf == "4h" else 1)]
        for tf in ("1h", "4h")
    }


def test_feature_names_are_prefixed_by_timeframe_in_a_stable_order(
    frames: dict[str, pd.DataFrame],
) -> None:
    # Without fuzzy sets every indicator output is an input.
    names = list(compute_features(_strategy(fuzzy_sets=None), frames).columns)
    per_timeframe = [
        "rsi_14",
        "macd_12_26_9",
        "macd_12_26_9_signal",
        "macd_12_26_9_histogram",
        "momentum_1",
        "price_return",
        "price_range",
        "price_body",
        "price_volume",
    ]
    assert names == [f"1h_{n}" for n in per_timeframe] + [f"4h_{n}" for n in per_timeframe]


def test_with_fuzzy_sets_the_network_reads_memberships_as_ktrdr_builds_them(
    frames: dict[str, pd.DataFrame],
) -> None:
    names = list(compute_features(_strategy(), frames).columns)
    per_timeframe = ["rsi_14_oversold", "price_return", "price_range", "price_body"]
    per_timeframe.append("price_volume")
    assert names == [f"1h_{n}" for n in per_timeframe] + [f"4h_{n}" for n in per_timeframe]


def test_features_have_no_nan_and_sit_on_base_bars(frames: dict[str, pd.DataFrame]) -> None:
    features = compute_features(_strategy(), frames)
    assert features.notna().all().all()
    assert features.index.isin(frames["1h"].index).all()
    assert features.index.is_monotonic_increasing
    # warm-up is cut only at the start: the rest of the base bars are all there
    assert features.index[-1] == frames["1h"].index[-1]
    assert (
        len(features)
        == frames["1h"].index.get_loc(features.index[-1])
        - frames["1h"].index.get_loc(features.index[0])
        + 1
    )


def test_changing_prices_after_bar_t_changes_no_feature_at_or_before_t(
    frames: dict[str, pd.DataFrame],
) -> None:
    strategy = _strategy()
    base = frames["1h"]
    cut = base.index[700]  # bar t; its close is t + 1h
    rng = np.random.default_rng(3)
    changed = {}
    for tf, frame in frames.items():
        closes_after = frame.index + pd.Timedelta(
            hours=4 if tf == "4h" else 1
        ) > cut + pd.Timedelta(hours=1)
        noise = rng.uniform(0.7, 1.4, size=(int(closes_after.sum()), 1))
        copy = frame.copy()
        copy.loc[closes_after] = copy.loc[closes_after].to_numpy() * noise
        changed[tf] = copy
    before = compute_features(strategy, frames)
    after = compute_features(strategy, changed)
    pd.testing.assert_frame_equal(before.loc[:cut], after.loc[:cut], check_exact=True)
    assert not before.loc[cut:].iloc[1:].equals(after.loc[cut:].iloc[1:])


def test_4h_bar_is_visible_only_from_the_base_bar_that_closes_with_it() -> None:
    base_index = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
    four_hour = pd.date_range("2024-01-01", periods=12, freq="4h", tz="UTC")
    markers = pd.DataFrame({"marker": np.arange(12, dtype=float)}, index=four_hour)
    aligned = align_to_base(markers, "4h", base_index, "1h")["marker"]
    for stamp, value in aligned.items():
        base_close = stamp + pd.Timedelta(hours=1)
        closed = [
            k for k, start in enumerate(four_hour) if start + pd.Timedelta(hours=4) <= base_close
        ]
        if closed:
            assert value == closed[-1], stamp
        else:
            assert np.isnan(value), stamp
    # the 4h bar stamped 08:00 closes at 12:00: first seen by the 1h bar stamped 11:00
    assert aligned[pd.Timestamp("2024-01-01 10:00", tz="UTC")] == 1
    assert aligned[pd.Timestamp("2024-01-01 11:00", tz="UTC")] == 2


def test_compute_features_aligns_unique_4h_markers_end_to_end() -> None:
    hours = 24 * 10
    stamps = pd.date_range("2024-01-01", periods=hours, freq="1h", tz="UTC")
    # close_k of 4h bar k is 100 * exp(0.001 * k(k+1)/2): its 1-bar log momentum is 0.001 * k
    hourly_close = np.empty(hours)
    for k in range(hours // 4):
        # KTRDR's momentum is a price difference: the k-th 4h bar's is 0.001 * k
        hourly_close[4 * k : 4 * k + 4] = 100.0 + 0.001 * k * (k + 1) / 2
    hourly = pd.DataFrame(
        {
            "open": hourly_close,
            "high": hourly_close,
            "low": hourly_close,
            "close": hourly_close,
            "volume": 1.0,
        },
        index=stamps,
    )
    hourly["volume"] = 1.0
    frames = {"1h": hourly, "4h": resample_ohlcv(hourly, "4h", "1h")}
    strategy = _strategy(indicators=[{"name": "momentum", "period": 1}], fuzzy_sets={})
    strategy = parse_strategy({**strategy.raw, "model": {}})
    features = compute_features(strategy, frames)
    for stamp, value in features["4h_momentum_1"].items():
        newest_closed = (
            stamp + pd.Timedelta(hours=1) - pd.Timestamp("2024-01-01", tz="UTC")
        ) // pd.Timedelta(hours=4) - 1
        assert value == pytest.approx(0.001 * newest_closed), stamp


def test_missing_timeframe_frame_is_a_clear_error(frames: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(DataValidationError, match="4h"):
        compute_features(_strategy(), {"1h": frames["1h"]})
