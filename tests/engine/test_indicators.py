"""Indicators: every supported one exists, is causal, scale-free, and right on simple inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_engine.data import load_ohlcv
from training_engine.indicators import INDICATORS, compute_indicator
from training_engine.strategy import (
    INDICATOR_DEFAULTS,
    SUPPORTED_INDICATORS,
    IndicatorSpec,
)


def _spec(kind: str, **params: float) -> IndicatorSpec:
    merged = {**INDICATOR_DEFAULTS[kind], **params}
    return IndicatorSpec(feature_id=kind, type=kind, params=merged)


@pytest.fixture(scope="module")
def frame(sample_data_dir: Path) -> pd.DataFrame:
    return load_ohlcv(sample_data_dir, "AAPL", "1h").iloc[:600]


def test_every_supported_indicator_has_an_implementation() -> None:
    assert set(INDICATORS) == set(SUPPORTED_INDICATORS)


@pytest.mark.parametrize("kind", sorted(SUPPORTED_INDICATORS))
def test_indicator_value_at_t_ignores_every_later_bar(kind: str, frame: pd.DataFrame) -> None:
    cut = 400
    changed = frame.copy()
    rng = np.random.default_rng(1)
    changed.iloc[cut + 1 :] *= rng.uniform(0.5, 2.0, size=(len(frame) - cut - 1, 1))
    before = compute_indicator(_spec(kind), frame)
    after = compute_indicator(_spec(kind), changed)
    pd.testing.assert_frame_equal(before.iloc[: cut + 1], after.iloc[: cut + 1], check_exact=True)
    assert not before.iloc[cut + 1 :].equals(after.iloc[cut + 1 :])
    assert before.iloc[100:].notna().all().all(), "only the warm-up may be NaN"


@pytest.mark.parametrize("kind", sorted(SUPPORTED_INDICATORS))
def test_indicator_outputs_do_not_depend_on_price_level(kind: str, frame: pd.DataFrame) -> None:
    scaled = frame.copy()
    scaled[["open", "high", "low", "close"]] *= 1000.0
    pd.testing.assert_frame_equal(
        compute_indicator(_spec(kind), frame),
        compute_indicator(_spec(kind), scaled),
        rtol=1e-7,
    )


def test_main_output_is_the_first_column_named_by_feature_id(frame: pd.DataFrame) -> None:
    outputs = compute_indicator(_spec("macd"), frame)
    assert list(outputs.columns) == ["macd", "macd_signal", "macd_hist"]


def _ramp(count: int, step: float) -> pd.DataFrame:
    close = 100.0 + step * np.arange(count)
    return pd.DataFrame(
        {"open": close, "high": close + 0.5, "low": close - 0.5, "close": close, "volume": 1.0},
        index=pd.date_range("2024-01-01", periods=count, freq="1h", tz="UTC"),
    )


def test_rsi_is_100_on_a_steady_rise_and_50_when_flat() -> None:
    rising = compute_indicator(_spec("rsi", period=5), _ramp(30, 1.0))["rsi"]
    flat = compute_indicator(_spec("rsi", period=5), _ramp(30, 0.0))["rsi"]
    assert rising.iloc[5:].eq(100.0).all()
    assert flat.iloc[5:].eq(50.0).all()
    assert rising.iloc[:5].isna().all()


def test_sma_feature_is_the_distance_of_price_from_its_average() -> None:
    bars = _ramp(10, 1.0)
    value = compute_indicator(_spec("sma", period=3), bars)["sma"]
    # closes 100, 101, 102 -> average 101; 102 / 101 - 1
    assert value.iloc[2] == pytest.approx(102.0 / 101.0 - 1.0)
    assert value.iloc[:2].isna().all()


def test_roc_and_momentum_compare_with_the_price_n_bars_ago() -> None:
    bars = _ramp(10, 2.0)
    roc = compute_indicator(_spec("roc", period=2), bars)["roc"]
    momentum = compute_indicator(_spec("momentum", period=2), bars)["momentum"]
    assert roc.iloc[4] == pytest.approx(100.0 * (108.0 / 104.0 - 1.0))
    assert momentum.iloc[4] == pytest.approx(np.log(108.0 / 104.0))


def test_stochastic_and_williams_r_sit_at_the_top_of_a_rising_range() -> None:
    bars = _ramp(30, 1.0)
    stoch = compute_indicator(_spec("stoch", k_period=5, d_period=3), bars)
    williams = compute_indicator(_spec("williams_r", period=5), bars)["williams_r"]
    # close sits 0.5 below the highest high of a range 4 + 1 wide
    assert stoch["stoch"].iloc[10] == pytest.approx(100.0 * 4.5 / 5.0)
    assert williams.iloc[10] == pytest.approx(-100.0 * 0.5 / 5.0)


def test_slow_stochastic_averages_fast_k_over_smooth_k_bars(frame: pd.DataFrame) -> None:
    fast = compute_indicator(_spec("stoch", k_period=14, d_period=3), frame)["stoch"]
    slow = compute_indicator(_spec("stoch", k_period=14, d_period=3, smooth_k=3), frame)["stoch"]
    pd.testing.assert_series_equal(slow, fast.rolling(3).mean(), check_names=False)


def test_bollinger_position_matches_its_definition() -> None:
    bars = _ramp(10, 1.0)
    outputs = compute_indicator(_spec("bbands", period=3, std_dev=2.0), bars)
    window = bars["close"].iloc[2:5]
    lower = window.mean() - 2.0 * window.std(ddof=0)
    width = 4.0 * window.std(ddof=0)
    assert outputs["bbands"].iloc[4] == pytest.approx((window.iloc[-1] - lower) / width)
    assert outputs["bbands_width"].iloc[4] == pytest.approx(width / window.mean())


def test_atr_is_the_bar_range_as_percent_of_close_on_a_flat_market() -> None:
    bars = _ramp(40, 0.0)  # high - low = 1 around a close of 100
    assert compute_indicator(_spec("atr", period=5), bars)["atr"].iloc[10:].tolist() == [1.0] * 30


def test_volume_indicators_read_the_direction_of_the_flow() -> None:
    rising, falling = _ramp(60, 1.0), _ramp(60, -1.0)
    assert compute_indicator(_spec("obv"), rising)["obv"].iloc[30:].eq(1.0).all()
    assert compute_indicator(_spec("obv"), falling)["obv"].iloc[30:].eq(-1.0).all()
    assert compute_indicator(_spec("mfi", period=5), rising)["mfi"].iloc[10:].eq(100.0).all()
    assert compute_indicator(_spec("cci", period=5), _ramp(20, 0.0))["cci"].iloc[10:].eq(0.0).all()


def test_adx_is_strong_and_led_by_plus_di_in_a_steady_rise() -> None:
    outputs = compute_indicator(_spec("adx", period=5), _ramp(80, 1.0))
    last = outputs.iloc[-1]
    assert last["adx_plus_di"] > last["adx_minus_di"]
    assert last["adx"] > 50.0
