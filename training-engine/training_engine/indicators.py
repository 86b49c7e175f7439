"""Technical indicators: KTRDR's registry, computed causally, with KTRDR's raw values.

Every indicator's value at bar t uses bars <= t only: rolling windows end at t and
recursive averages start at bar 0, so appending or changing later bars never changes
an earlier value. Each function returns KTRDR's outputs for the indicator (``value``
for single-output ones; the first column is what a bare reference reads), in KTRDR's
units (price units where KTRDR's are). Warm-up bars are NaN where KTRDR's are.

:func:`compute_indicator` runs the indicator a strategy names; which values reach the
network (fuzzy memberships, raw outputs) is decided in ``features``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from training_engine.zigzag import zigzag_pivots


class IndicatorCall(Protocol):
    """What :func:`compute_indicator` reads of a strategy's ``IndicatorSpec``.

    The strategy package reads this registry (names, parameters, defaults); the registry
    imports nothing of it (an import-linter contract, see pyproject.toml).
    """

    @property
    def feature_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def params(self) -> Mapping[str, bool | int | float | str]: ...
    @property
    def source(self) -> str: ...


def compute_indicator(spec: IndicatorCall, frame: pd.DataFrame) -> pd.DataFrame:
    """One indicator's outputs on an OHLCV frame.

    Returns:
        Columns named ``{feature_id}`` (the first output) and ``{feature_id}_{output}``
        for the others, on ``frame``'s index; infinities become NaN.
    """
    entry = KTRDR_INDICATORS[spec.type]
    params = dict(spec.params)
    if "source" in entry.defaults:
        params["source"] = spec.source
    raw = entry.compute(frame, **params)
    first = raw.columns[0]
    names = [spec.feature_id if c == first else f"{spec.feature_id}_{c}" for c in raw.columns]
    result = raw.set_axis(names, axis=1).astype("float64")
    return result.replace([np.inf, -np.inf], np.nan)


# ============================================================================
# KTRDR's indicators, raw
#
# The functions below reproduce KTRDR's registry (``ktrdr/indicators/`` at its
# HEAD) with its parameter names, defaults, outputs and formulas, returning
# RAW values (price units where KTRDR's are). Each takes an OHLCV frame and
# keyword parameters and returns a frame whose columns are KTRDR's output
# names (``value`` for single-output ones; the first column is the one a bare
# ``indicator_id`` refers to). All are causal. Where KTRDR's own code looks
# ahead or is broken, the function says so and does the causal / working thing.
# ============================================================================


def _frame(index: pd.Index, **columns: pd.Series | np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()},
        index=index,
    )


def _true_range(frame: pd.DataFrame) -> pd.Series:
    high, low = frame["high"].to_numpy(np.float64), frame["low"].to_numpy(np.float64)
    previous_close = frame["close"].shift(1).to_numpy(np.float64)
    # fmax skips NaN: the first bar has no previous close, so its range is high - low.
    ranges = np.fmax.reduce(
        [high - low, np.abs(high - previous_close), np.abs(low - previous_close)]
    )
    return pd.Series(ranges, index=frame.index)


def _mean_absolute_deviation(values: np.ndarray, period: int) -> np.ndarray:
    """Mean |x - window mean| over each ``period``-bar window; NaN during warm-up.

    Sums one lag at a time, so memory stays O(n) rather than O(n * period).
    """
    deviation = np.full(len(values), np.nan)
    if len(values) < period:
        return deviation
    count = len(values) - period + 1
    means = sliding_window_view(values, period).mean(axis=1)
    total = np.zeros(count)
    for lag in range(period):
        total += np.abs(values[lag : lag + count] - means)
    deviation[period - 1 :] = total / period
    return deviation


def _sma(series: pd.Series, period: int) -> pd.Series:
    return series.rolling(window=period, min_periods=period).mean()


def _money_flow_multiplier(frame: pd.DataFrame) -> pd.Series:
    """((close - low) - (high - close)) / (high - low), 0 on a zero range."""
    span = frame["high"] - frame["low"]
    location = (frame["close"] - frame["low"]) - (frame["high"] - frame["close"])
    return (location / span.where(span != 0)).mask(span == 0, 0.0)


def ktrdr_sma(frame: pd.DataFrame, period: int = 20, source: str = "close") -> pd.DataFrame:
    """SimpleMovingAverage: rolling mean."""
    return _frame(frame.index, value=_sma(frame[source], period))


def ktrdr_ema(
    frame: pd.DataFrame, period: int = 20, source: str = "close", adjust: bool = True
) -> pd.DataFrame:
    """ExponentialMovingAverage: pandas ewm(span=period, adjust=adjust), from bar 0."""
    return _frame(frame.index, value=frame[source].ewm(span=period, adjust=adjust).mean())


def ktrdr_wma(frame: pd.DataFrame, period: int = 20, source: str = "close") -> pd.DataFrame:
    """WeightedMovingAverage: weights 1..period, the newest bar heaviest."""
    prices = frame[source].to_numpy(dtype=np.float64)
    values = np.full(len(prices), np.nan)
    if len(prices) >= period:
        weights = np.arange(1, period + 1, dtype=np.float64)
        windows = sliding_window_view(prices, period)
        values[period - 1 :] = windows @ weights / weights.sum()
    return _frame(frame.index, value=values)


def ktrdr_rsi(frame: pd.DataFrame, period: int = 14, source: str = "close") -> pd.DataFrame:
    """RSIIndicator: Wilder RSI seeded with the mean of the first ``period`` changes.

    First value at bar ``period``; 100 when the average loss is 0 (50 if the
    gain is 0 too); 50 from bar ``period`` on for a series that never moves.
    """
    prices = frame[source].to_numpy(dtype=np.float64)
    change = np.diff(prices)
    values = np.full(len(prices), np.nan)
    if len(prices) <= period:
        return _frame(frame.index, value=values)
    if np.nansum(np.abs(change)) == 0:
        values[period:] = 50.0
        return _frame(frame.index, value=values)
    gain, loss = np.clip(change, 0.0, None), np.clip(-change, 0.0, None)

    def wilder(moves: np.ndarray) -> np.ndarray:
        # avg[period] = mean of the first `period` moves, then avg = avg + (move - avg) / period:
        # a recursive EMA (alpha 1/period) over [seed, moves[period:]], in pandas' C loop.
        seeded = np.concatenate(([moves[:period].mean()], moves[period:]))
        averaged: np.ndarray = (
            pd.Series(seeded).ewm(alpha=1.0 / period, adjust=False).mean().to_numpy()
        )
        return averaged

    average_gain, average_loss = wilder(gain), wilder(loss)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = 100.0 - 100.0 / (1.0 + average_gain / average_loss)
    flat = np.where(average_gain == 0, 50.0, 100.0)
    values[period:] = np.where(average_loss == 0, flat, strength)
    return _frame(frame.index, value=values)


def ktrdr_macd(
    frame: pd.DataFrame,
    fast_period: int = 12,
    slow_period: int = 26,
    signal_period: int = 9,
    source: str = "close",
) -> pd.DataFrame:
    """MACDIndicator: EMA(fast) - EMA(slow) (adjust=False, from bar 0), signal EMA."""
    price = frame[source]
    line = (
        price.ewm(span=fast_period, adjust=False).mean()
        - price.ewm(span=slow_period, adjust=False).mean()
    )
    signal = line.ewm(span=signal_period, adjust=False).mean()
    return _frame(frame.index, line=line, signal=signal, histogram=line - signal)


def ktrdr_bollinger_bands(
    frame: pd.DataFrame, period: int = 20, multiplier: float = 2.0, source: str = "close"
) -> pd.DataFrame:
    """BollingerBands: SMA +- multiplier * rolling std (ddof=1, pandas' default)."""
    window = frame[source].rolling(window=period, min_periods=period)
    middle, spread = window.mean(), multiplier * window.std()
    return _frame(frame.index, upper=middle + spread, middle=middle, lower=middle - spread)


def ktrdr_bollinger_band_width(
    frame: pd.DataFrame, period: int = 20, multiplier: float = 2.0, source: str = "close"
) -> pd.DataFrame:
    """BollingerBandWidth: (upper - lower) / middle; 0 where |middle| <= 1e-10 or NaN."""
    bands = ktrdr_bollinger_bands(frame, period, multiplier, source)
    middle = bands["middle"]
    width = (bands["upper"] - bands["lower"]) / middle
    # KTRDR's np.where also turns the warm-up (NaN middle) into 0.
    return _frame(frame.index, value=width.where(middle.abs() > 1e-10, 0.0))


def ktrdr_atr(frame: pd.DataFrame, period: int = 14) -> pd.DataFrame:
    """ATRIndicator: SIMPLE moving average of the true range (not Wilder's)."""
    return _frame(frame.index, value=_sma(_true_range(frame), period))


def ktrdr_stochastic(
    frame: pd.DataFrame, k_period: int = 14, d_period: int = 3, smooth_k: int = 3
) -> pd.DataFrame:
    """StochasticIndicator: raw %K (50 where undefined, warm-up included), SMA-smoothed.

    %K = mean of the last ``smooth_k`` raw %K (fewer at the start), %D = mean of
    the last ``d_period`` %K (fewer at the start).
    """
    highest = frame["high"].rolling(window=k_period, min_periods=k_period).max()
    lowest = frame["low"].rolling(window=k_period, min_periods=k_period).min()
    raw = ((frame["close"] - lowest) / (highest - lowest) * 100).fillna(50.0)
    k = raw.rolling(window=smooth_k, min_periods=1).mean() if smooth_k > 1 else raw
    d = k.rolling(window=d_period, min_periods=1).mean()
    return _frame(frame.index, k=k, d=d)


def ktrdr_adx(frame: pd.DataFrame, period: int = 14) -> pd.DataFrame:
    """ADXIndicator: Wilder smoothing as ewm(alpha=1/period, adjust=False) from bar 0.

    No warm-up NaN: bar 0's true range is high - low and its DMs are 0; DI and
    DX are 0 where their denominators are.
    """
    high, low = frame["high"], frame["low"]
    up, down = high.diff(), -low.diff()
    plus_dm = up.where((up > down) & (up > 0), 0.0).fillna(0.0)
    minus_dm = down.where((down > up) & (down > 0), 0.0).fillna(0.0)

    def wilder(series: pd.Series) -> pd.Series:
        return series.ewm(alpha=1.0 / period, adjust=False).mean()

    true_range = wilder(_true_range(frame))
    plus_di = (wilder(plus_dm) / true_range.where(true_range != 0) * 100).fillna(0.0)
    minus_di = (wilder(minus_dm) / true_range.where(true_range != 0) * 100).fillna(0.0)
    total = plus_di + minus_di
    dx = ((plus_di - minus_di).abs() / total.where(total != 0) * 100).fillna(0.0)
    return _frame(frame.index, adx=wilder(dx), plus_di=plus_di, minus_di=minus_di)


def ktrdr_roc(frame: pd.DataFrame, period: int = 10, source: str = "close") -> pd.DataFrame:
    """ROCIndicator: (price - price n bars ago) / price n bars ago * 100."""
    price = frame[source]
    before = price.shift(period)
    roc_values = ((price - before) / before * 100).replace([np.inf, -np.inf], np.nan)
    return _frame(frame.index, value=roc_values)


def ktrdr_momentum(frame: pd.DataFrame, period: int = 10, source: str = "close") -> pd.DataFrame:
    """MomentumIndicator: price - price n bars ago (price units)."""
    price = frame[source]
    return _frame(frame.index, value=price - price.shift(period))


def ktrdr_williams_r(frame: pd.DataFrame, period: int = 14) -> pd.DataFrame:
    """WilliamsRIndicator: (HH - close) / (HH - LL) * -100; -50 where undefined or warm-up."""
    highest = frame["high"].rolling(window=period, min_periods=period).max()
    lowest = frame["low"].rolling(window=period, min_periods=period).min()
    values = (highest - frame["close"]) / (highest - lowest) * -100
    return _frame(frame.index, value=values.fillna(-50.0))


def ktrdr_cci(frame: pd.DataFrame, period: int = 20) -> pd.DataFrame:
    """CCIIndicator: (TP - SMA(TP)) / (0.015 * mean |TP - SMA(TP)|), TP = (H+L+C)/3."""
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3
    deviation = _mean_absolute_deviation(typical.to_numpy(np.float64), period)
    average = _sma(typical, period)
    return _frame(frame.index, value=(typical - average) / (0.015 * deviation))


def ktrdr_mfi(frame: pd.DataFrame, period: int = 14) -> pd.DataFrame:
    """MFIIndicator: money flow of the last ``period`` typical-price changes.

    First value at bar ``period``; 100 when the negative flow is 0, 0 when the
    positive flow is 0 (and the negative is not).
    """
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3.0
    flow = typical * frame["volume"]
    change = typical.diff()
    positive = flow.where(change > 0, 0.0).rolling(period).sum()
    negative = flow.where(change < 0, 0.0).rolling(period).sum()
    values = 100.0 - 100.0 / (1.0 + positive / negative.where(negative != 0))
    values = values.mask(negative == 0, 100.0).mask((positive == 0) & (negative != 0), 0.0)
    values.iloc[: min(period, len(values))] = np.nan
    return _frame(frame.index, value=values)


def ktrdr_obv(frame: pd.DataFrame) -> pd.DataFrame:
    """OBVIndicator: cumulative signed volume, 0 at bar 0."""
    direction = np.sign(frame["close"].diff()).fillna(0.0)
    signed = direction * frame["volume"]
    signed.iloc[:1] = 0.0
    return _frame(frame.index, value=signed.cumsum())


def ktrdr_ad_line(
    frame: pd.DataFrame, use_sma_smoothing: bool = False, smoothing_period: int = 21
) -> pd.DataFrame:
    """ADLineIndicator: cumulative money flow volume and KTRDR's derived outputs.

    roc_10 = 10-bar % change of the line, momentum_21 = line - line 21 bars ago,
    relative_strength = (line / rolling 50-bar mean (min 20) - 1) * 100;
    ``line_sma_{smoothing_period}`` is added when use_sma_smoothing.
    """
    multiplier = _money_flow_multiplier(frame)
    money_volume = multiplier * frame["volume"]
    line = money_volume.cumsum()
    columns: dict[str, pd.Series] = {
        "line": line,
        "mf_multiplier": multiplier,
        "mf_volume": money_volume,
    }
    if use_sma_smoothing:
        columns[f"line_sma_{smoothing_period}"] = _sma(line, smoothing_period)
    columns["roc_10"] = (line / line.shift(10) - 1) * 100
    columns["momentum_21"] = line - line.shift(21)
    recent = line.rolling(window=50, min_periods=20).mean()
    columns["relative_strength"] = (line / recent - 1) * 100
    return _frame(frame.index, **columns)


def ktrdr_cmf(frame: pd.DataFrame, period: int = 21) -> pd.DataFrame:
    """CMFIndicator: sum(money flow volume) / sum(volume) over ``period`` (0 on no volume).

    Also: momentum = cmf - cmf 5 bars ago, signal = EMA(9, adjust=False) of cmf,
    histogram = cmf - signal, above_zero / below_zero as 1.0 / 0.0.
    """
    multiplier = _money_flow_multiplier(frame)
    money_volume = multiplier * frame["volume"]
    volume_sum = frame["volume"].rolling(window=period, min_periods=period).sum()
    money_sum = money_volume.rolling(window=period, min_periods=period).sum()
    cmf = (money_sum / volume_sum.where(volume_sum != 0)).mask(volume_sum == 0, 0.0)
    signal = cmf.ewm(span=9, adjust=False).mean()
    return _frame(
        frame.index,
        cmf=cmf,
        mf_multiplier=multiplier,
        mf_volume=money_volume,
        momentum=cmf - cmf.shift(5),
        signal=signal,
        histogram=cmf - signal,
        above_zero=(cmf > 0).astype(float),
        below_zero=(cmf < 0).astype(float),
    )


def ktrdr_aroon(
    frame: pd.DataFrame, period: int = 14, include_oscillator: bool = False
) -> pd.DataFrame:
    """AroonIndicator over the last ``period`` bars (this one included).

    up = (period - bars since the window's highest high) / period * 100 (the
    first highest on ties), down likewise for the lowest low, oscillator = up - down.
    """
    n = len(frame)
    up, down = np.full(n, np.nan), np.full(n, np.nan)
    if n >= period:
        highs = sliding_window_view(frame["high"].to_numpy(dtype=np.float64), period)
        lows = sliding_window_view(frame["low"].to_numpy(dtype=np.float64), period)
        up[period - 1 :] = (highs.argmax(axis=1) + 1) / period * 100.0
        down[period - 1 :] = (lows.argmin(axis=1) + 1) / period * 100.0
    return _frame(frame.index, up=up, down=down, oscillator=up - down)


def ktrdr_distance_from_ma(
    frame: pd.DataFrame, period: int = 20, ma_type: str = "SMA", source: str = "close"
) -> pd.DataFrame:
    """DistanceFromMA: (price - MA) / MA * 100; MA is SMA or EMA (adjust=True)."""
    if ma_type == "SMA":
        average = ktrdr_sma(frame, period, source)["value"]
    elif ma_type == "EMA":
        average = ktrdr_ema(frame, period, source)["value"]
    else:
        raise ValueError(f"ma_type must be 'SMA' or 'EMA', not {ma_type!r}")
    distance = (frame[source] - average) / average.where(average.abs() > 1e-10) * 100
    return _frame(frame.index, value=distance.mask(average.abs() <= 1e-10, 0.0))


def ktrdr_donchian_channels(
    frame: pd.DataFrame, period: int = 20, include_middle: bool = True
) -> pd.DataFrame:
    """DonchianChannels: highest high, (upper + lower) / 2, lowest low over ``period``."""
    upper = frame["high"].rolling(window=period, min_periods=period).max()
    lower = frame["low"].rolling(window=period, min_periods=period).min()
    return _frame(frame.index, upper=upper, middle=(upper + lower) / 2, lower=lower)


def ktrdr_fisher_transform(
    frame: pd.DataFrame, period: int = 10, smoothing: int = 3
) -> pd.DataFrame:
    """FisherTransform of the median price's place in its ``period``-bar range.

    x = 2 * (median - LL) / (HH - LL) - 1 (0 on a zero range), clipped to
    +-0.999; fisher = EMA(smoothing, adjust=False) of 0.5 * ln((1+x)/(1-x));
    signal = fisher one bar earlier.
    """
    median = (frame["high"] + frame["low"]) / 2
    highest = frame["high"].rolling(window=period, min_periods=period).max()
    lowest = frame["low"].rolling(window=period, min_periods=period).min()
    span = highest - lowest
    position = (2 * (median - lowest) / span.where(span != 0) - 1).mask(span == 0, 0.0)
    position = position.clip(-0.999, 0.999)
    raw = pd.Series(0.5 * np.log((1 + position) / (1 - position)), index=frame.index)
    fisher = raw.ewm(span=smoothing, adjust=False).mean()
    return _frame(frame.index, fisher=fisher, signal=fisher.shift(1))


def ktrdr_ichimoku(
    frame: pd.DataFrame,
    tenkan_period: int = 9,
    kijun_period: int = 26,
    senkou_b_period: int = 52,
    displacement: int = 26,
) -> pd.DataFrame:
    """IchimokuIndicator as KTRDR computes it: nothing is displaced.

    tenkan/kijun/senkou_b = (highest high + lowest low) / 2 over their periods,
    senkou_a = (tenkan + kijun) / 2, chikou = close. KTRDR accepts
    ``displacement`` but does not use it, which keeps every line causal.
    """
    del displacement

    def midpoint(period: int) -> pd.Series:
        highest = frame["high"].rolling(window=period, min_periods=period).max()
        return (highest + frame["low"].rolling(window=period, min_periods=period).min()) / 2

    tenkan, kijun = midpoint(tenkan_period), midpoint(kijun_period)
    return _frame(
        frame.index,
        tenkan=tenkan,
        kijun=kijun,
        senkou_a=(tenkan + kijun) / 2,
        senkou_b=midpoint(senkou_b_period),
        chikou=frame["close"],
    )


def ktrdr_keltner_channels(
    frame: pd.DataFrame, period: int = 20, atr_period: int = 10, multiplier: float = 2.0
) -> pd.DataFrame:
    """KeltnerChannels: EMA(close, period, adjust=False) +- multiplier * SMA ATR."""
    middle = frame["close"].ewm(span=period, adjust=False).mean()
    width = multiplier * _sma(_true_range(frame), atr_period)
    return _frame(frame.index, upper=middle + width, middle=middle, lower=middle - width)


def ktrdr_parabolic_sar(
    frame: pd.DataFrame, initial_af: float = 0.02, step_af: float = 0.02, max_af: float = 0.2
) -> pd.DataFrame:
    """ParabolicSARIndicator, KTRDR's variant.

    Bar 1 starts long (SAR = low[0], EP = high[1]) if close[1] > close[0], else
    short (SAR = high[0], EP = low[1]); bar 0 is NaN. Each bar: SAR += AF * (EP -
    SAR); a long flips when low <= SAR (SAR = EP, EP = low, AF reset), else SAR
    is capped by the two previous lows and a new high raises EP and AF (+step,
    <= max); shorts mirror it.
    """
    # A path-dependent recursion: one pass over Python floats (lists index ~5x faster
    # than numpy arrays element by element).
    high: list[float] = frame["high"].to_numpy(dtype=np.float64).tolist()
    low: list[float] = frame["low"].to_numpy(dtype=np.float64).tolist()
    close: list[float] = frame["close"].to_numpy(dtype=np.float64).tolist()
    sar = [math.nan] * len(close)
    if len(close) < 2:
        return _frame(frame.index, value=np.asarray(sar))
    long = close[1] > close[0]
    extreme = high[1] if long else low[1]
    sar[1] = low[0] if long else high[0]
    factor = initial_af
    for i in range(2, len(close)):
        value = sar[i - 1] + factor * (extreme - sar[i - 1])
        if long and low[i] <= value:
            long, value, extreme, factor = False, extreme, low[i], initial_af
        elif not long and high[i] >= value:
            long, value, extreme, factor = True, extreme, high[i], initial_af
        elif long:
            value = min(value, low[i - 1], low[i - 2])
            if high[i] > extreme:
                extreme, factor = high[i], min(factor + step_af, max_af)
        else:
            value = max(value, high[i - 1], high[i - 2])
            if low[i] < extreme:
                extreme, factor = low[i], min(factor + step_af, max_af)
        sar[i] = value
    return _frame(frame.index, value=np.asarray(sar))


def ktrdr_rvi(frame: pd.DataFrame, period: int = 10, signal_period: int = 4) -> pd.DataFrame:
    """RVIIndicator: SMA of the 1-2-2-1 weighted (close - open) over that of (high - low).

    The weighted sums (/6) start at bar 3; rvi is NaN where the denominator
    average is 0; signal = SMA(signal_period) of rvi.
    """
    weights = np.array([1.0, 2.0, 2.0, 1.0])

    def weighted(series: pd.Series) -> pd.Series:
        values = np.full(len(series), np.nan)
        if len(series) >= 4:
            values[3:] = sliding_window_view(series.to_numpy(dtype=np.float64), 4) @ weights / 6.0
        return pd.Series(values, index=series.index)

    numerator = _sma(weighted(frame["close"] - frame["open"]), period)
    denominator = _sma(weighted(frame["high"] - frame["low"]), period)
    rvi = numerator / denominator.where(denominator != 0)
    return _frame(frame.index, rvi=rvi, signal=_sma(rvi, signal_period))


def ktrdr_squeeze_intensity(
    frame: pd.DataFrame,
    bb_period: int = 20,
    bb_multiplier: float = 2.0,
    kc_period: int = 20,
    kc_multiplier: float = 2.0,
    source: str = "close",
) -> pd.DataFrame:
    """SqueezeIntensity: how far the Bollinger Bands sit inside the Keltner Channel.

    max(0, min(kc_upper - bb_upper, bb_lower - kc_lower) / (kc_upper - kc_lower));
    0 where the channel width is <= 1e-10 or undefined. The Keltner Channel is
    KTRDR's default (atr_period 10).
    """
    bands = ktrdr_bollinger_bands(frame, bb_period, bb_multiplier, source)
    channel = ktrdr_keltner_channels(frame, period=kc_period, multiplier=kc_multiplier)
    width = channel["upper"] - channel["lower"]
    gaps = [channel["upper"] - bands["upper"], bands["lower"] - channel["lower"]]
    inside = pd.concat(gaps, axis=1).min(axis=1, skipna=False)
    intensity = (inside / width).clip(lower=0.0)
    return _frame(frame.index, value=intensity.where(width.abs() > 1e-10, 0.0))


def ktrdr_supertrend(
    frame: pd.DataFrame, period: int = 10, multiplier: float = 3.0
) -> pd.DataFrame:
    """SuperTrend with an SMA ATR: trend line and direction (+1 up, -1 down).

    Bands (high+low)/2 +- multiplier*ATR; the final upper band only falls
    (unless the previous close broke above it), the final lower only rises; the
    trend flips down when close <= final lower, up when close >= final upper.
    KTRDR seeds its recursion on bar 0, where the ATR is NaN, so its output stays
    NaN (direction +1) forever; this one seeds on the first bar with an ATR.
    """
    atr_values = _sma(_true_range(frame), period).to_numpy(dtype=np.float64)
    median = ((frame["high"] + frame["low"]) / 2).to_numpy(dtype=np.float64)
    start = int(np.argmax(~np.isnan(atr_values))) if (~np.isnan(atr_values)).any() else len(median)
    # Path-dependent: one pass over Python floats (faster than numpy element access).
    close: list[float] = frame["close"].to_numpy(dtype=np.float64).tolist()
    upper_band: list[float] = (median + multiplier * atr_values).tolist()
    lower_band: list[float] = (median - multiplier * atr_values).tolist()
    trend, direction = [math.nan] * len(close), [math.nan] * len(close)
    upper, lower, up = np.nan, np.nan, True
    for i in range(start, len(close)):
        if i == start:
            upper, lower, up = upper_band[i], lower_band[i], close[i] > lower_band[i]
        else:
            if upper_band[i] < upper or close[i - 1] > upper:
                upper = upper_band[i]
            if lower_band[i] > lower or close[i - 1] < lower:
                lower = lower_band[i]
            up = close[i] > lower if up else close[i] >= upper
        trend[i], direction[i] = (lower, 1.0) if up else (upper, -1.0)
    return _frame(frame.index, trend=np.asarray(trend), direction=np.asarray(direction))


def ktrdr_volume_ratio(frame: pd.DataFrame, period: int = 20) -> pd.DataFrame:
    """VolumeRatio: volume / SMA(volume, period); 1.0 where the SMA is ~0 or warming up."""
    average = _sma(frame["volume"], period)
    ratio = (frame["volume"] / average).where(average.abs() > 1e-10, 1.0)
    return _frame(frame.index, value=ratio)


def ktrdr_vwap(
    frame: pd.DataFrame, period: int = 20, use_typical_price: bool = True
) -> pd.DataFrame:
    """VWAPIndicator: sum(price*volume)/sum(volume) over the last ``period`` bars.

    Fewer bars at the start (min_periods 1); period 0 is cumulative from the
    first bar; price is (H+L+C)/3 or the close; NaN on zero volume.
    """
    if use_typical_price:
        price = (frame["high"] + frame["low"] + frame["close"]) / 3
    else:
        price = frame["close"]
    weighted, volume = price * frame["volume"], frame["volume"]
    if period == 0:
        total, traded = weighted.cumsum(), volume.cumsum()
    else:
        total = weighted.rolling(window=period, min_periods=1).sum()
        traded = volume.rolling(window=period, min_periods=1).sum()
    vwap = (total / traded.where(traded != 0)).replace([np.inf, -np.inf], np.nan)
    return _frame(frame.index, value=vwap)


def ktrdr_zigzag(
    frame: pd.DataFrame, threshold: float = 0.05, source: str = "close"
) -> pd.DataFrame:
    """ZigZag, causal: the price of the latest ZigZag pivot known at each bar.

    KTRDR's ZigZagIndicator puts each pivot's price on its bar and NaN elsewhere,
    which only hindsight can do (later bars move and confirm pivots); here bar t
    gets the price of the last pivot found walking bars 0..t (the running extreme).
    """
    prices = frame[source].to_numpy(dtype=np.float64)
    return _frame(frame.index, value=prices[zigzag_pivots(prices, threshold).latest])


@dataclass(frozen=True, slots=True)
class KtrdrIndicator:
    """One KTRDR indicator: its function, parameter defaults, outputs and names."""

    function: Callable[..., pd.DataFrame]
    outputs: tuple[str, ...]  # column names; the first is what a bare reference means
    names: tuple[str, ...]  # every lower-case name KTRDR accepts for it

    @property
    def defaults(self) -> dict[str, object]:
        """Parameter name -> KTRDR's default, in signature order."""
        parameters = list(inspect.signature(self.function).parameters.values())[1:]
        return {p.name: p.default for p in parameters}

    def compute(self, frame: pd.DataFrame, **params: object) -> pd.DataFrame:
        """Outputs on ``frame``'s index, with KTRDR's defaults for missing parameters."""
        return self.function(frame, **{**self.defaults, **params})


def _entry(function: Callable[..., pd.DataFrame], outputs: str, *names: str) -> KtrdrIndicator:
    return KtrdrIndicator(function, tuple(outputs.split()), names)


# Key: our snake-case name. Names: KTRDR's canonical registry name (class name
# without "Indicator", lower case), the class name, its ``_aliases``, and the
# aliases of KTRDR's older IndicatorFactory (aedd70ea).
KTRDR_INDICATORS: dict[str, KtrdrIndicator] = {
    "sma": _entry(ktrdr_sma, "value", "simplemovingaverage", "sma"),
    "ema": _entry(ktrdr_ema, "value", "exponentialmovingaverage", "ema"),
    "wma": _entry(ktrdr_wma, "value", "weightedmovingaverage", "wma"),
    "rsi": _entry(ktrdr_rsi, "value", "rsi", "rsiindicator"),
    "macd": _entry(ktrdr_macd, "line signal histogram", "macd", "macdindicator"),
    "bollinger_bands": _entry(
        ktrdr_bollinger_bands,
        "upper middle lower",
        "bollingerbands",
        "bollingerbandsindicator",
        "bbands",
    ),
    "bollinger_band_width": _entry(
        ktrdr_bollinger_band_width,
        "value",
        "bollingerbandwidth",
        "bollingerbandwidthindicator",
    ),
    "atr": _entry(ktrdr_atr, "value", "atr", "atrindicator"),
    "stochastic": _entry(ktrdr_stochastic, "k d", "stochastic", "stochasticindicator"),
    "adx": _entry(
        ktrdr_adx, "adx plus_di minus_di", "adx", "adxindicator", "averagedirectionalindex"
    ),
    "roc": _entry(ktrdr_roc, "value", "roc", "rocindicator"),
    "momentum": _entry(ktrdr_momentum, "value", "momentum", "momentumindicator"),
    "williams_r": _entry(ktrdr_williams_r, "value", "williamsr", "williamsrindicator"),
    "cci": _entry(ktrdr_cci, "value", "cci", "cciindicator"),
    "mfi": _entry(ktrdr_mfi, "value", "mfi", "mfiindicator"),
    "obv": _entry(ktrdr_obv, "value", "obv", "obvindicator"),
    "ad_line": _entry(
        ktrdr_ad_line,
        "line mf_multiplier mf_volume roc_10 momentum_21 relative_strength",
        "adline",
        "adlineindicator",
        "accumulationdistribution",
    ),
    "cmf": _entry(
        ktrdr_cmf,
        "cmf mf_multiplier mf_volume momentum signal histogram above_zero below_zero",
        "cmf",
        "cmfindicator",
        "chaikinmoneyflow",
    ),
    "aroon": _entry(ktrdr_aroon, "up down oscillator", "aroon", "aroonindicator"),
    "distance_from_ma": _entry(
        ktrdr_distance_from_ma, "value", "distancefromma", "distancefrommaindicator"
    ),
    "donchian_channels": _entry(
        ktrdr_donchian_channels,
        "upper middle lower",
        "donchianchannels",
        "donchianchannelsindicator",
    ),
    "fisher_transform": _entry(
        ktrdr_fisher_transform, "fisher signal", "fishertransform", "fishertransformindicator"
    ),
    "ichimoku": _entry(
        ktrdr_ichimoku,
        "tenkan kijun senkou_a senkou_b chikou",
        "ichimoku",
        "ichimokuindicator",
    ),
    "keltner_channels": _entry(
        ktrdr_keltner_channels,
        "upper middle lower",
        "keltnerchannels",
        "keltnerchannelsindicator",
    ),
    "parabolic_sar": _entry(ktrdr_parabolic_sar, "value", "parabolicsar", "parabolicsarindicator"),
    "rvi": _entry(ktrdr_rvi, "rvi signal", "rvi", "rviindicator"),
    "squeeze_intensity": _entry(
        ktrdr_squeeze_intensity, "value", "squeezeintensity", "squeezeintensityindicator"
    ),
    "supertrend": _entry(ktrdr_supertrend, "trend direction", "supertrend", "supertrendindicator"),
    "volume_ratio": _entry(ktrdr_volume_ratio, "value", "volumeratio", "volumeratioindicator"),
    "vwap": _entry(ktrdr_vwap, "value", "vwap", "vwapindicator"),
    "zigzag": _entry(ktrdr_zigzag, "value", "zigzag", "zigzagindicator"),
}


def find_ktrdr_indicator(name: str) -> KtrdrIndicator | None:
    """The indicator KTRDR would load for ``name`` (any case), or None."""
    key = name.lower()
    if key in KTRDR_INDICATORS:
        return KTRDR_INDICATORS[key]
    return next((i for i in KTRDR_INDICATORS.values() if key in i.names), None)
