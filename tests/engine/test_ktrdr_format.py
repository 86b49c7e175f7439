"""The whole KTRDR strategy format: names, references, v3 forms, training keys, timeframes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from training_engine.data import data_file_candidates, timeframe_delta
from training_engine.errors import StrategyConfigError
from training_engine.features import compute_features
from training_engine.indicators import KTRDR_INDICATORS
from training_engine.strategy import parse_strategy


def _v3(indicators: dict[str, Any], fuzzy_sets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "v3",
        "version": "3.0",
        "training_data": {
            "symbols": {"mode": "single", "symbol": "EURUSD"},
            "timeframes": {"mode": "single", "timeframe": "1h"},
        },
        "indicators": indicators,
        "fuzzy_sets": fuzzy_sets,
        **extra,
    }


def _frame(n: int = 400, seed: int = 1) -> pd.DataFrame:
    """Hourly EURUSD-like bars: a random walk with ~0.1% moves."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    spread = np.abs(rng.normal(0, 0.0008, n)) * close
    open_ = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.integers(100, 1000, n).astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("RSIIndicator", "rsi"),
        ("rsiindicator", "rsi"),
        ("ATRIndicator", "atr"),
        ("BollingerBands", "bollinger_bands"),
        ("bollingerbandwidth", "bollinger_band_width"),
        ("WilliamsR", "williams_r"),
        ("SimpleMovingAverage", "sma"),
        ("ParabolicSAR", "parabolic_sar"),
        ("AccumulationDistribution", "ad_line"),
        ("stoch", "stochastic"),
    ],
)
def test_indicator_types_are_found_by_ktrdrs_names_in_any_case(written: str, expected: str) -> None:
    strategy = parse_strategy(_v3({"x": {"type": written}}, {}))
    assert strategy.indicators[0].type == expected


def test_every_registry_indicator_parses_with_ktrdrs_defaults_and_feeds_the_network() -> None:
    indicators = {f"i_{key}": {"type": key} for key in KTRDR_INDICATORS}
    strategy = parse_strategy(_v3(indicators, {}))
    assert [spec.type for spec in strategy.indicators] == list(KTRDR_INDICATORS)
    stochastic = next(s for s in strategy.indicators if s.type == "stochastic")
    assert dict(stochastic.params) == {"k_period": 14, "d_period": 3, "smooth_k": 3}
    features = compute_features(strategy, {"1h": _frame(400)})
    assert len(features) > 200 and features.notna().all().all()


def test_unknown_indicator_and_an_undeclared_data_source_are_refused_naming_them() -> None:
    with pytest.raises(StrategyConfigError) as unknown:
        parse_strategy(_v3({"h": {"type": "HullMovingAverage"}}, {}))
    assert unknown.value.key == "indicators.h.type" and "HullMovingAverage" in unknown.value.problem
    with pytest.raises(StrategyConfigError) as external:
        parse_strategy(_v3({"r": {"type": "rsi", "data_source": "GBPUSD"}}, {}))
    assert external.value.key == "indicators.r.data_source"
    assert "no context_data declared" in external.value.problem  # context data: test_context_data


def test_multi_output_references_and_ktrdr_column_names_pick_an_output() -> None:
    low = [0, 15, 25]
    strategy = parse_strategy(
        {
            "name": "refs",
            "training_data": {"symbols": ["EURUSD"], "timeframes": ["1h"]},
            "indicators": [
                {"name": "adx", "period": 14},
                {"name": "macd"},
                {"name": "bbands", "period": 20, "multiplier": 2.0},
            ],
            "fuzzy_sets": {
                "DI_Plus_14": {"low": {"type": "triangular", "parameters": low}},
                "adx_14.minus_di": {"low": {"type": "triangular", "parameters": low}},
                "adx_14.adx": {"weak": {"type": "triangular", "parameters": low}},
                "macd_12_26_9.signal": {"up": {"type": "triangular", "parameters": [0, 1, 2]}},
                "bbands_20_2.upper": {"near": {"type": "triangular", "parameters": [1, 1.1, 1.2]}},
            },
        }
    )
    assert set(strategy.fuzzy_sets) == {
        "adx_14.plus_di",
        "adx_14.minus_di",
        "adx_14",
        "macd_12_26_9.signal",
        "bbands_20_2",  # upper is the first output: what a bare reference reads
    }
    names = list(compute_features(strategy, {"1h": _frame()}).columns)
    assert names == [
        "1h_adx_14_plus_di_low",
        "1h_adx_14_minus_di_low",
        "1h_adx_14_weak",
        "1h_macd_12_26_9_signal_up",
        "1h_bbands_20_2_near",
    ]
    with pytest.raises(StrategyConfigError) as wrong:
        parse_strategy(_v3({"adx_14": {"type": "adx"}}, {"g": {"indicator": "adx_14.nope"}}))
    assert wrong.value.key == "fuzzy_sets.g.indicator" and "plus_di" in wrong.value.problem


def test_v3_shorthand_sets_three_numbers_triangular_four_trapezoidal() -> None:
    strategy = parse_strategy(
        _v3(
            {"rsi_14": {"type": "rsi", "period": 14}},
            {"momentum": {"indicator": "rsi_14", "oversold": [0, 25, 40], "mid": [30, 40, 60, 70]}},
        )
    )
    sets = {s.name: s for s in strategy.fuzzy_sets["rsi_14"]}
    assert sets["momentum_oversold"].type == "triangular"
    assert sets["momentum_oversold"].parameters == (0.0, 25.0, 40.0)
    assert sets["momentum_mid"].type == "trapezoidal"


def test_v3_training_data_forms_and_date_ranges() -> None:
    multi = _v3(
        {"rsi_14": {"type": "rsi"}},
        {},
        training_data={
            "symbols": {"mode": "multi_symbol", "symbols": ["EURUSD", "GBPUSD"]},
            "timeframes": {
                "mode": "multi_timeframe",
                "timeframes": ["5m", "1h"],
                "base_timeframe": "5m",
            },
            "date_range": {"start": "2024-01-01", "end": "2024-06-30"},
        },
    )
    strategy = parse_strategy(multi)
    assert strategy.symbols == ("EURUSD", "GBPUSD")
    assert strategy.timeframes == ("5m", "1h") and strategy.base_timeframe == "5m"
    assert (strategy.start_date, strategy.end_date) == ("2024-01-01", "2024-06-30")


def test_top_level_training_keys_loss_and_lr_scheduler_are_read() -> None:
    strategy = parse_strategy(
        _v3(
            {"rsi_14": {"type": "rsi"}},
            {},
            training={
                "labels": {"source": "triple_barrier", "max_holding_period": 24},
                "epochs": 7,
                "learning_rate": 0.01,
                "batch_size": 16,
                "loss": "focal",
                "focal_gamma": 1.5,
                "lr_scheduler": {"type": "step", "step_size": 5, "gamma": 0.5},
                "early_stopping": {"patience": 3},
            },
        )
    )
    settings = strategy.training
    assert (settings.epochs, settings.learning_rate, settings.batch_size) == (7, 0.01, 16)
    assert (settings.loss, settings.focal_gamma) == ("focal", 1.5)
    assert (settings.scheduler, settings.scheduler_step_size, settings.scheduler_gamma) == (
        "step",
        5,
        0.5,
    )
    assert settings.early_stopping.patience == 3
    assert strategy.labels.max_holding_period == 24 and strategy.labels.vol_span == 50


def test_output_format_follows_the_label_source_and_a_mismatch_is_refused() -> None:
    forward = {"labels": {"source": "forward_return", "horizon": 20}, "loss": "huber"}
    strategy = parse_strategy(
        _v3({"r": {"type": "rsi"}}, {}, training=forward, decisions={"output_format": "regression"})
    )
    assert strategy.output_format == "regression" and strategy.labels.task == "regression"
    with pytest.raises(StrategyConfigError) as mismatch:
        parse_strategy(_v3({"r": {"type": "rsi"}}, {}, decisions={"output_format": "regression"}))
    assert mismatch.value.key == "decisions.output_format"
    with pytest.raises(StrategyConfigError) as bad_loss:
        parse_strategy(_v3({"r": {"type": "rsi"}}, {}, training={"loss": "hinge"}))
    assert bad_loss.value.key == "training.loss"


def test_1M_is_a_month_and_1m_a_minute(tmp_path: Path) -> None:
    assert timeframe_delta("1m") == pd.Timedelta(minutes=1)
    assert timeframe_delta("1M") == pd.DateOffset(months=1)
    assert timeframe_delta("1H") == pd.Timedelta(hours=1)
    assert data_file_candidates(tmp_path, "EURUSD", "1M")[0].name == "EURUSD_1M.csv"
    assert data_file_candidates(tmp_path, "EURUSD", "1m")[0].name == "EURUSD_1m.csv"
    strategy = parse_strategy(
        _v3(
            {"r": {"type": "rsi"}},
            {},
            training_data={"symbols": ["X"], "timeframes": ["1d", "1w", "1M"]},
        )
    )
    assert strategy.timeframes == ("1d", "1w", "1M")


def test_fuzzy_sets_read_ktrdrs_values() -> None:
    frame = _frame(300)
    close_ratio = [0.98, 1.0, 1.02]
    v1 = parse_strategy(
        {
            "name": "v1",
            "training_data": {"symbols": ["EURUSD"], "timeframes": ["1h"]},
            "indicators": [{"name": "sma", "period": 20}, {"name": "macd"}],
            "fuzzy_sets": {
                "sma": {"at": {"type": "triangular", "parameters": close_ratio}},
                "macd": {"up": {"type": "triangular", "parameters": [0, 0.002, 0.004]}},
            },
        }
    )
    v3 = parse_strategy(
        _v3(
            {"sma_20": {"type": "sma", "period": 20}},
            {
                "raw": {"indicator": "sma_20", "at": close_ratio},
                "ratio": {
                    "indicator": "sma_20",
                    "input_transform": {"type": "price_ratio", "reference": "close"},
                    "at": close_ratio,
                },
            },
        )
    )
    old = compute_features(v1, {"1h": frame})
    new = compute_features(v3, {"1h": frame})
    sma = frame["close"].rolling(20).mean()
    ratio = (frame["close"] / sma).loc[old.index]
    expected = np.clip(1 - np.abs(ratio - 1.0) / 0.02, 0, 1)
    np.testing.assert_allclose(old["1h_sma_20_at"], expected)
    np.testing.assert_allclose(new["1h_sma_20_ratio_at"], expected.loc[new.index])
    # v3 without a transform reads the raw average (~1.1, inside [0.98, 1.02] never)
    assert (new["1h_sma_20_raw_at"] == 0).all()
    assert (old["1h_macd_12_26_9_up"] > 0).mean() > 0.05


def test_without_a_base_timeframe_the_highest_frequency_one_is_the_base() -> None:
    data = _v3({"r": {"type": "rsi"}}, {})
    data["training_data"]["timeframes"] = {"mode": "multi_timeframe", "timeframes": ["1h", "5m"]}
    assert parse_strategy(data).base_timeframe == "5m"
