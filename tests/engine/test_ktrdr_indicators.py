"""KTRDR's indicators: causal, KTRDR's names and outputs, right against TA-Lib or by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from training_engine.data import load_ohlcv
from training_engine.indicators import KTRDR_INDICATORS, find_ktrdr_indicator

TAIL = 300  # bars after which seed differences of recursive averages have died out


@pytest.fixture(scope="module")
def frame(sample_data_dir: Path) -> pd.DataFrame:
    return load_ohlcv(sample_data_dir, "AAPL", "1h").iloc[:600]


def _compute(name: str, frame: pd.DataFrame, **params: object) -> pd.DataFrame:
    return KTRDR_INDICATORS[name].compute(frame, **params)


def _bars(**columns: list[float]) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(next(iter(columns.values()))), freq="1h")
    return pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}, index)


def _same(actual: pd.Series, expected: np.ndarray, start: int = 0, rtol: float = 1e-9) -> None:
    np.testing.assert_allclose(actual.to_numpy()[start:], np.asarray(expected)[start:], rtol=rtol)


@pytest.mark.parametrize("name", sorted(KTRDR_INDICATORS))
def test_value_at_t_ignores_every_later_bar(name: str, frame: pd.DataFrame) -> None:
    cut = 400
    changed = frame.copy()
    rng = np.random.default_rng(2)
    changed.iloc[cut + 1 :] *= rng.uniform(0.5, 2.0, size=(len(frame) - cut - 1, 1))
    before, after = _compute(name, frame), _compute(name, changed)
    pd.testing.assert_frame_equal(before.iloc[: cut + 1], after.iloc[: cut + 1], check_exact=True)
    assert not before.iloc[cut + 1 :].equals(after.iloc[cut + 1 :])


@pytest.mark.parametrize("name", sorted(KTRDR_INDICATORS))
def test_outputs_are_the_registered_columns_and_filled_after_warm_up(
    name: str, frame: pd.DataFrame
) -> None:
    result = _compute(name, frame)
    assert tuple(result.columns) == KTRDR_INDICATORS[name].outputs
    assert result.index.equals(frame.index)
    assert result.iloc[100:].notna().all().all()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("RSIIndicator", "rsi"),
        ("rsi", "rsi"),
        ("BollingerBands", "bollinger_bands"),
        ("bbands", "bollinger_bands"),
        ("ATRIndicator", "atr"),
        ("WilliamsR", "williams_r"),
        ("williams_r", "williams_r"),
        ("SimpleMovingAverage", "sma"),
        ("SuperTrendIndicator", "supertrend"),
        ("ChaikinMoneyFlow", "cmf"),
        ("squeezeintensity", "squeeze_intensity"),
    ],
)
def test_indicators_are_found_by_every_name_ktrdr_accepts(written: str, expected: str) -> None:
    assert find_ktrdr_indicator(written) is KTRDR_INDICATORS[expected]


def test_unknown_indicator_is_not_found() -> None:
    assert find_ktrdr_indicator("hull_moving_average") is None


def test_defaults_are_ktrdrs() -> None:
    assert KTRDR_INDICATORS["macd"].defaults == {
        "fast_period": 12, "slow_period": 26, "signal_period": 9, "source": "close",
    }  # fmt: skip
    assert KTRDR_INDICATORS["stochastic"].defaults == {"k_period": 14, "d_period": 3, "smooth_k": 3}
    assert KTRDR_INDICATORS["ema"].defaults["adjust"] is True
    assert KTRDR_INDICATORS["keltner_channels"].defaults == {
        "period": 20, "atr_period": 10, "multiplier": 2.0,
    }  # fmt: skip


# ------------------------------------------------------------------ against TA-Lib


def test_moving_averages_match_talib(frame: pd.DataFrame) -> None:
    close = frame["close"].to_numpy()
    _same(_compute("sma", frame, period=20)["value"], talib.SMA(close, 20), start=19)
    _same(_compute("wma", frame, period=20)["value"], talib.WMA(close, 20), start=19)
    # adjusted EWMA from bar 0 vs TA-Lib's SMA seed: equal once the seed has decayed
    _same(_compute("ema", frame, period=20)["value"], talib.EMA(close, 20), start=TAIL)
    distance = _compute("distance_from_ma", frame, period=20)["value"]
    sma = talib.SMA(close, 20)
    _same(distance, (close - sma) / sma * 100, start=19)


def test_rsi_matches_talib_from_its_first_value(frame: pd.DataFrame) -> None:
    close = frame["close"].to_numpy()
    rsi = _compute("rsi", frame, period=14)["value"]
    assert rsi.iloc[:14].isna().all()
    _same(rsi, talib.RSI(close, 14), start=14)


def test_macd_matches_talib_after_warm_up(frame: pd.DataFrame) -> None:
    line, signal, hist = talib.MACD(frame["close"].to_numpy(), 12, 26, 9)
    macd = _compute("macd", frame)
    for column, expected in (("line", line), ("signal", signal), ("histogram", hist)):
        _same(macd[column], expected, start=TAIL, rtol=1e-6)


def test_bollinger_bands_use_the_sample_std(frame: pd.DataFrame) -> None:
    close = frame["close"].to_numpy()
    deviations = 2.0 * np.sqrt(20 / 19)  # TA-Lib's std is the population one
    upper, middle, lower = talib.BBANDS(close, 20, deviations, deviations)
    bands = _compute("bollinger_bands", frame, period=20, multiplier=2.0)
    for column, expected in (("upper", upper), ("middle", middle), ("lower", lower)):
        _same(bands[column], expected, start=19)
    width = _compute("bollinger_band_width", frame)["value"]
    _same(width, (upper - lower) / middle, start=19)
    assert (width.iloc[:19] == 0.0).all(), "KTRDR reports 0 during the warm-up"


def test_atr_is_a_simple_average_of_true_range(frame: pd.DataFrame) -> None:
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    expected = talib.SMA(talib.TRANGE(high, low, close), 14)
    _same(_compute("atr", frame, period=14)["value"], expected, start=14)


def test_stochastic_matches_talib_slow_stochastic(frame: pd.DataFrame) -> None:
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    k, d = talib.STOCH(high, low, close, 14, 3, 0, 3, 0)
    stochastic = _compute("stochastic", frame)
    _same(stochastic["k"], k, start=20)
    _same(stochastic["d"], d, start=20)


def test_adx_and_directional_indicators_match_talib_after_warm_up(frame: pd.DataFrame) -> None:
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    adx = _compute("adx", frame, period=14)
    _same(adx["adx"], talib.ADX(high, low, close, 14), start=TAIL, rtol=1e-6)
    _same(adx["plus_di"], talib.PLUS_DI(high, low, close, 14), start=TAIL, rtol=1e-6)
    _same(adx["minus_di"], talib.MINUS_DI(high, low, close, 14), start=TAIL, rtol=1e-6)


def test_price_oscillators_match_talib(frame: pd.DataFrame) -> None:
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    volume = frame["volume"].to_numpy()
    _same(_compute("roc", frame, period=10)["value"], talib.ROC(close, 10), start=10)
    _same(_compute("momentum", frame, period=10)["value"], talib.MOM(close, 10), start=10)
    _same(_compute("williams_r", frame)["value"], talib.WILLR(high, low, close, 14), start=13)
    _same(_compute("cci", frame)["value"], talib.CCI(high, low, close, 20), start=19)
    _same(_compute("mfi", frame)["value"], talib.MFI(high, low, close, volume, 14), start=14)


def test_volume_lines_match_talib(frame: pd.DataFrame) -> None:
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    volume = frame["volume"].to_numpy()
    # TA-Lib's OBV starts at the first bar's volume, KTRDR's at 0
    _same(_compute("obv", frame)["value"], talib.OBV(close, volume) - volume[0])
    ad = talib.AD(high, low, close, volume)
    line = _compute("ad_line", frame)
    _same(line["line"], ad)
    _same(line["roc_10"], talib.ROC(ad, 10), start=10)
    _same(line["momentum_21"], talib.MOM(ad, 21), start=21, rtol=1e-7)


def test_channels_match_talib_extremes(frame: pd.DataFrame) -> None:
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    donchian = _compute("donchian_channels", frame, period=20)
    _same(donchian["upper"], talib.MAX(high, 20), start=19)
    _same(donchian["lower"], talib.MIN(low, 20), start=19)
    _same(donchian["middle"], talib.MIDPRICE(high, low, 20), start=19)
    ichimoku = _compute("ichimoku", frame)
    tenkan, kijun = talib.MIDPRICE(high, low, 9), talib.MIDPRICE(high, low, 26)
    _same(ichimoku["tenkan"], tenkan, start=8)
    _same(ichimoku["kijun"], kijun, start=25)
    _same(ichimoku["senkou_a"], (tenkan + kijun) / 2, start=25)
    _same(ichimoku["senkou_b"], talib.MIDPRICE(high, low, 52), start=51)
    _same(ichimoku["chikou"], close)
    keltner = _compute("keltner_channels", frame)
    middle = talib.EMA(close, 20)
    width = 2.0 * talib.SMA(talib.TRANGE(high, low, close), 10)
    _same(keltner["middle"], middle, start=TAIL)
    _same(keltner["upper"], middle + width, start=TAIL)
    _same(keltner["lower"], middle - width, start=TAIL)


def test_squeeze_intensity_from_talib_bands_and_channel(frame: pd.DataFrame) -> None:
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    deviations = 2.0 * np.sqrt(20 / 19)
    bb_upper, _, bb_lower = talib.BBANDS(close, 20, deviations, deviations)
    middle = talib.EMA(close, 20)
    width = 2.0 * talib.SMA(talib.TRANGE(high, low, close), 10)
    kc_upper, kc_lower = middle + width, middle - width
    inside = np.minimum(kc_upper - bb_upper, bb_lower - kc_lower) / (kc_upper - kc_lower)
    squeeze = _compute("squeeze_intensity", frame)["value"]
    np.testing.assert_allclose(squeeze.to_numpy()[TAIL:], np.maximum(0.0, inside)[TAIL:], atol=1e-9)
    # as KTRDR's np.where: 0 until the channel exists, NaN until the bands do
    assert (squeeze.iloc[:9] == 0.0).all()
    assert squeeze.iloc[9:19].isna().all()


# ------------------------------------------------------------------ by hand


def test_aroon_counts_bars_since_the_window_extremes() -> None:
    bars = _bars(high=[1, 3, 2, 2.5, 4], low=[1, 0.5, 0.8, 0.6, 0.7])
    aroon = _compute("aroon", bars, period=3)
    # windows 0-2, 1-3, 2-4: highest at offsets 1, 0, 2; lowest at 1, 0, 1
    _same(aroon["up"], [np.nan, np.nan, 200 / 3, 100 / 3, 100], start=2)
    _same(aroon["down"], [np.nan, np.nan, 200 / 3, 100 / 3, 200 / 3], start=2)
    _same(aroon["oscillator"], [np.nan, np.nan, 0, 0, 100 / 3], start=2)


def test_cmf_is_money_flow_volume_over_volume() -> None:
    bars = _bars(high=[10, 12, 11], low=[8, 10, 9], close=[9.5, 11.5, 9], volume=[100, 200, 300])
    cmf = _compute("cmf", bars, period=2)
    # multipliers 0.5, 0.5, -1 -> flows 50, 100, -300
    _same(cmf["mf_multiplier"], [0.5, 0.5, -1.0])
    _same(cmf["cmf"], [np.nan, 150 / 300, -200 / 500], start=1)


def test_volume_ratio_and_vwap_by_hand() -> None:
    bars = _bars(high=[10, 20, 30], low=[10, 20, 30], close=[10, 20, 30], volume=[1, 3, 0])
    _same(_compute("volume_ratio", bars, period=2)["value"], [1.0, 3 / 2, 0.0])
    _same(_compute("vwap", bars, period=2)["value"], [10, 70 / 4, 60 / 3])
    _same(_compute("vwap", bars, period=0)["value"], [10, 70 / 4, 70 / 4])


def test_fisher_transform_by_hand() -> None:
    bars = _bars(high=[2, 4, 3], low=[0, 2, 1])
    # median 3 in range 0..4 -> x = 0.5; median 2 in 1..4 -> x = -1/3
    first, second = 0.5 * np.log(3.0), 0.5 * np.log(0.5)
    raw = _compute("fisher_transform", bars, period=2, smoothing=1)
    _same(raw["fisher"], [np.nan, first, second], start=1)
    _same(raw["signal"], [np.nan, np.nan, first], start=2)
    smoothed = _compute("fisher_transform", bars, period=2, smoothing=3)
    _same(smoothed["fisher"], [np.nan, first, (first + second) / 2], start=1)


def test_rvi_by_hand() -> None:
    bars = _bars(
        open=[1, 1, 1, 1, 1], high=[3, 2, 3, 3, 2], low=[1, 0, 1, 1, 0], close=[2, 0, 2, 2, 1]
    )
    rvi = _compute("rvi", bars, period=1, signal_period=2)
    # (close-open) 1 -1 1 1 0 and (high-low) 2 everywhere, weighted 1-2-2-1 / 6
    _same(rvi["rvi"], [np.nan] * 3 + [(2 / 6) / 2, (3 / 6) / 2], start=3)
    _same(rvi["signal"], [np.nan] * 4 + [(1 / 6 + 1 / 4) / 2], start=4)


def test_parabolic_sar_by_hand() -> None:
    bars = _bars(
        high=[10, 11, 12, 13, 11], low=[9, 10, 11, 12, 9], close=[9.5, 10.5, 11.5, 12.5, 9.5]
    )
    # long from bar 1 (SAR low0 = 9, EP 11); bar 2 capped at the prior lows -> 9, EP 12, AF .04;
    # bar 3: 9 + .04 * 3 = 9.12, EP 13, AF .06; bar 4: 9.3528 >= low 9 -> flips to EP 13
    sar = _compute("parabolic_sar", bars)["value"]
    _same(sar, [np.nan, 9, 9, 9.12, 13], start=1)


def test_supertrend_by_hand() -> None:
    bars = _bars(high=[10, 11, 12, 11, 8], low=[9, 10, 11, 9, 7], close=[9.5, 10.5, 11.5, 9.5, 7.5])
    # period 1: ATR = TR 1, 1.5, 1.5, 2.5, 2.5; bands (H+L)/2 +- ATR
    supertrend = _compute("supertrend", bars, period=1, multiplier=1.0)
    _same(supertrend["trend"], [8.5, 9, 10, 12.5, 10])
    _same(supertrend["direction"], [1, 1, 1, -1, -1])


def test_zigzag_gives_the_latest_pivot_known_at_each_bar() -> None:
    bars = _bars(close=[100, 105, 112, 108, 99, 95, 104, 106, 101])
    values = _compute("zigzag", bars, threshold=0.10)["value"]
    _same(values, [100, 100, 112, 112, 99, 95, 95, 106, 106])
