"""Technical indicators, computed causally and expressed as scale-free features.

Every indicator's value at bar t uses bars <= t only: rolling windows end at t
and exponential averages are recursive (``adjust=False``), so appending or
changing later bars never changes an earlier value. Each function returns one
or more columns; the FIRST is the indicator's main output, the one fuzzy sets
read. Warm-up bars are NaN.

Outputs are chosen so one model can train across symbols at different price
levels (AAPL at 150, EURUSD at 1.1):

=========== ============================================================ =========
indicator   main output (other outputs)                                  range
=========== ============================================================ =========
sma, ema    price / average - 1 (distance from the average, fraction)    ~ +-0.1
rsi         Wilder RSI                                                   0..100
macd        MACD as % of the slow EMA (PPO) (signal, histogram, same %)  ~ +-2
bbands      %B: position within the bands (width: band width / middle)   ~ 0..1
atr         ATR as % of close                                            ~ 0..5
stoch       %K, SMA over smooth_k when > 1 (%D = SMA of %K, d_period)    0..100
adx         ADX (+DI, -DI)                                               0..100
roc         100 * (price / price n bars ago - 1)                         ~ +-10
momentum    log(price / price n bars ago) (raw differences scale)        ~ +-0.1
williams_r  Williams %R                                                  -100..0
cci         commodity channel index                                      ~ +-200
mfi         money flow index                                             0..100
obv         OBV change over 20 bars / volume traded in them              -1..1
=========== ============================================================ =========

``source`` (open/high/low/close) picks the series for sma, ema, rsi, macd,
bbands, roc and momentum; the others read high, low, close (and volume) by
definition. Where a ratio's denominator is zero (a flat market), the neutral
value is used (RSI 50, %B 0.5, %K 50, ...) so flat stretches are not NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from training_engine.strategy import IndicatorSpec

OBV_WINDOW = 20

IndicatorFunction = Callable[[pd.DataFrame, Mapping[str, float], str], pd.DataFrame]


def _neutral(numerator: pd.Series, denominator: pd.Series, neutral: float) -> pd.Series:
    """numerator / denominator, ``neutral`` where the denominator is 0 (NaN stays NaN)."""
    values = numerator / denominator.where(denominator != 0)
    flat = (denominator == 0) & numerator.notna()
    return values.mask(flat, neutral)


def _wilder(series: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing: a recursive EMA with alpha 1/period, NaN during warm-up."""
    smoothed = series.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()
    return smoothed


def _ema(series: pd.Series, period: int) -> pd.Series:
    return series.ewm(span=period, adjust=False, min_periods=period).mean()


def _period(params: Mapping[str, float], name: str = "period") -> int:
    return int(params[name])


def sma(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    price = frame[source]
    average = price.rolling(_period(params)).mean()
    return pd.DataFrame({"": price / average - 1.0})


def ema(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    price = frame[source]
    return pd.DataFrame({"": price / _ema(price, _period(params)) - 1.0})


def rsi(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    change = frame[source].diff()
    period = _period(params)
    gain = _wilder(change.clip(lower=0.0), period)
    loss = _wilder((-change).clip(lower=0.0), period)
    total = gain + loss
    return pd.DataFrame({"": _neutral(100.0 * gain, total, 50.0)})


def macd(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    price = frame[source]
    slow = _ema(price, _period(params, "slow_period"))
    line = 100.0 * (_ema(price, _period(params, "fast_period")) - slow) / slow
    signal = _ema(line, _period(params, "signal_period"))
    return pd.DataFrame({"": line, "signal": signal, "hist": line - signal})


def bbands(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    price = frame[source]
    window = price.rolling(_period(params))
    middle = window.mean()
    half_width = float(params["std_dev"]) * window.std(ddof=0)
    lower = middle - half_width
    position = _neutral(price - lower, 2.0 * half_width, 0.5)
    return pd.DataFrame({"": position, "width": 2.0 * half_width / middle})


def _true_range(frame: pd.DataFrame) -> pd.Series:
    previous_close = frame["close"].shift(1)
    ranges = pd.concat(
        [
            frame["high"] - frame["low"],
            (frame["high"] - previous_close).abs(),
            (frame["low"] - previous_close).abs(),
        ],
        axis=1,
    )
    # The first bar has no previous close: its range is high - low.
    return ranges.max(axis=1, skipna=True)


def atr(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    average_range = _wilder(_true_range(frame), _period(params))
    return pd.DataFrame({"": 100.0 * average_range / frame["close"]})


def stoch(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    k_period = _period(params, "k_period")
    lowest = frame["low"].rolling(k_period).min()
    highest = frame["high"].rolling(k_period).max()
    k = _neutral(100.0 * (frame["close"] - lowest), highest - lowest, 50.0)
    smooth_k = int(params.get("smooth_k", 1))
    if smooth_k > 1:  # the "slow" stochastic: %K averaged over smooth_k bars
        k = k.rolling(smooth_k).mean()
    d = k.rolling(_period(params, "d_period")).mean()
    return pd.DataFrame({"": k, "d": d})


def adx(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    period = _period(params)
    up = frame["high"].diff()
    down = -frame["low"].diff()
    plus_dm = up.where((up > down) & (up > 0), 0.0).where(up.notna())
    minus_dm = down.where((down > up) & (down > 0), 0.0).where(down.notna())
    true_range = _wilder(_true_range(frame).where(up.notna()), period)
    plus_di = _neutral(100.0 * _wilder(plus_dm, period), true_range, 0.0)
    minus_di = _neutral(100.0 * _wilder(minus_dm, period), true_range, 0.0)
    dx = _neutral(100.0 * (plus_di - minus_di).abs(), plus_di + minus_di, 0.0)
    return pd.DataFrame({"": _wilder(dx, period), "plus_di": plus_di, "minus_di": minus_di})


def roc(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    price = frame[source]
    return pd.DataFrame({"": 100.0 * (price / price.shift(_period(params)) - 1.0)})


def momentum(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    price = frame[source]
    return pd.DataFrame({"": np.log(price / price.shift(_period(params)))})


def williams_r(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    period = _period(params)
    highest = frame["high"].rolling(period).max()
    lowest = frame["low"].rolling(period).min()
    value = _neutral(-100.0 * (highest - frame["close"]), highest - lowest, -50.0)
    return pd.DataFrame({"": value})


def cci(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    period = _period(params)
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3.0
    values = typical.to_numpy()
    deviation = np.full(len(values), np.nan)
    if len(values) >= period:
        windows = sliding_window_view(values, period)
        deviation[period - 1 :] = np.abs(windows - windows.mean(axis=1, keepdims=True)).mean(axis=1)
    mean_deviation = pd.Series(deviation, index=frame.index)
    value = _neutral(typical - typical.rolling(period).mean(), 0.015 * mean_deviation, 0.0)
    return pd.DataFrame({"": value})


def mfi(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    period = _period(params)
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3.0
    flow = typical * frame["volume"]
    change = typical.diff()
    positive = flow.where(change > 0, 0.0).where(change.notna()).rolling(period).sum()
    negative = flow.where(change < 0, 0.0).where(change.notna()).rolling(period).sum()
    return pd.DataFrame({"": _neutral(100.0 * positive, positive + negative, 50.0)})


def obv(frame: pd.DataFrame, params: Mapping[str, float], source: str) -> pd.DataFrame:
    direction = np.sign(frame["close"].diff()).fillna(0.0)
    signed_volume = direction * frame["volume"]
    # The OBV level depends on where the file starts; its change over a window does not.
    change = signed_volume.rolling(OBV_WINDOW).sum()
    traded = frame["volume"].rolling(OBV_WINDOW).sum()
    return pd.DataFrame({"": _neutral(change, traded, 0.0)})


INDICATORS: dict[str, IndicatorFunction] = {
    "sma": sma,
    "ema": ema,
    "rsi": rsi,
    "macd": macd,
    "bbands": bbands,
    "atr": atr,
    "stoch": stoch,
    "adx": adx,
    "roc": roc,
    "momentum": momentum,
    "williams_r": williams_r,
    "cci": cci,
    "mfi": mfi,
    "obv": obv,
}


def compute_indicator(spec: IndicatorSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """One indicator's outputs on an OHLCV frame.

    Returns:
        Columns named ``{feature_id}`` (main output, first) and
        ``{feature_id}_{output}`` for the others, on ``frame``'s index.
    """
    raw = INDICATORS[spec.type](frame, spec.params, spec.source)
    names = [spec.feature_id if not c else f"{spec.feature_id}_{c}" for c in raw.columns]
    result = raw.set_axis(names, axis=1).astype("float64")
    return result.replace([np.inf, -np.inf], np.nan)
