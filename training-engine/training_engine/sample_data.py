"""Deterministic generated OHLCV data with planted, learnable structure.

Each symbol's hourly log returns follow a hidden regime (up-trend, down-trend
or flat) that persists for on average ``_REGIME_BARS`` bars, plus AR(1)
momentum and noise. Trend regimes move prices several times their noise over a
label horizon, so momentum features (rsi, macd, roc) computed on the past
predict the next bars' direction better than always guessing the majority
class. Higher timeframes are resampled from the hourly series, so every file
of a symbol agrees with the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from training_engine.data import timeframe_delta
from training_engine.strategy import validate_symbol, validate_timeframe

SAMPLE_START = pd.Timestamp("2023-01-02 00:00", tz="UTC")
_BASE_TIMEFRAME = "1h"
_REGIME_BARS = 50.0
_DRIFT = 0.003  # per-bar log drift in a trend regime
_NOISE = 0.004  # per-bar log-return volatility
_AR = 0.15  # momentum carried from the previous bar's return
_START_PRICES = {"AAPL": 150.0, "MSFT": 300.0, "EURUSD": 1.10, "GBPUSD": 1.27}
# Context series (context_data): an instrument, two FRED-like daily yields, a COT report.
CONTEXT_SYMBOL = "GBPUSD"
CONTEXT_YIELDS = {"DGS2": 4.3, "DGS10": 3.6}  # start levels, percent
CONTEXT_COT_REPORT = "EUR"
_COT_HISTORY_WEEKS = 160  # KTRDR fetches this much before the start (52-week percentile)
_FORMATS = ("csv", "parquet")


def _regimes(rng: np.random.Generator, bars: int) -> np.ndarray:
    """A sequence of states in {-1, 0, +1} with geometric durations."""
    states = np.empty(bars, dtype=np.int8)
    position = 0
    while position < bars:
        length = int(rng.geometric(1.0 / _REGIME_BARS))
        states[position : position + length] = rng.choice((-1, 0, 1), p=(0.35, 0.3, 0.35))
        position += length
    return states


def generate_hourly(symbol: str, bars: int, seed: int, index: int = 0) -> pd.DataFrame:
    """One symbol's base (1h) OHLCV bars, indexed by UTC bar open time."""
    rng = np.random.default_rng([seed, index])
    drift = _regimes(rng, bars) * _DRIFT
    shocks = rng.normal(0.0, _NOISE, bars)
    returns = np.empty(bars)
    previous = 0.0
    for i in range(bars):  # AR(1) recursion; a few thousand steps is well under a millisecond
        previous = drift[i] + _AR * (previous - drift[i - 1] if i else 0.0) + shocks[i]
        returns[i] = previous
    start_price = _START_PRICES.get(symbol, 50.0 + 10.0 * index)
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([start_price], close[:-1])) * np.exp(rng.normal(0, _NOISE / 10, bars))
    wick = np.abs(rng.normal(0.0, _NOISE / 2, (2, bars)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = np.round(rng.lognormal(10.0, 0.3, bars) * (1.0 + 50.0 * np.abs(returns)))
    index_ = pd.date_range(SAMPLE_START, periods=bars, freq="1h", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index_
    )


def resample_ohlcv(frame: pd.DataFrame, timeframe: str, base_timeframe: str) -> pd.DataFrame:
    """Aggregate base bars into ``timeframe`` bars, dropping incomplete ones."""
    rule, base = timeframe_delta(timeframe), timeframe_delta(base_timeframe)
    if not isinstance(rule, pd.Timedelta) or not isinstance(base, pd.Timedelta):
        raise ValueError("resampling to calendar months is not supported")
    per_bar = int(rule / base)
    grouped = frame.resample(rule, origin="epoch", label="left", closed="left")
    result = grouped.agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    complete = grouped["close"].count() == per_bar
    return result.loc[complete]


def write_sample_data(
    out_dir: Path,
    symbols: Sequence[str] = ("AAPL", "MSFT", "EURUSD"),
    timeframes: Sequence[str] = ("1h", "4h", "1d"),
    bars: int = 3000,
    seed: int = 7,
    fmt: str = "csv",
) -> list[Path]:
    """Write ``{out_dir}/{SYMBOL}_{TIMEFRAME}.csv`` (or ``.parquet``) for every pair.

    Args:
        bars: number of base (1h) bars per symbol; higher timeframes get
            ``bars // bars_per_higher_bar`` complete bars.
        seed: same seed, same files.
        fmt: ``csv`` or ``parquet``.

    Returns:
        The written paths, symbol-major.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(_FORMATS)}, got {fmt!r}")
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    checked_tf = [validate_timeframe(t) for t in timeframes]
    base_delta = pd.Timedelta(hours=1)  # _BASE_TIMEFRAME
    for tf in checked_tf:
        delta = timeframe_delta(tf)
        if not isinstance(delta, pd.Timedelta):
            raise ValueError(f"timeframe {tf}: sample data has no calendar-month bars")
        if delta < base_delta or delta % base_delta != pd.Timedelta(0):
            raise ValueError(f"timeframe {tf} is not a multiple of the 1h base series")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, symbol in enumerate(symbols):
        hourly = generate_hourly(validate_symbol(symbol), bars, seed, index)
        for tf in checked_tf:
            frame = hourly if tf == _BASE_TIMEFRAME else resample_ohlcv(hourly, tf, "1h")
            path = out_dir / f"{symbol}_{tf}.{fmt}"
            table = frame.reset_index()
            table["timestamp"] = table["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            if fmt == "csv":
                table.to_csv(path, index=False, float_format="%.6f")
            else:
                table.to_parquet(path, index=False)
            written.append(path)
    return written


def write_context_sample_data(
    out_dir: Path, bars: int = 3000, seed: int = 7, fmt: str = "csv"
) -> list[Path]:
    """Write the context series a ``context_data`` strategy reads, over the sample period.

    ``GBPUSD_1h`` (OHLCV bars, as the symbols'); ``DGS2`` and ``DGS10`` as FRED writes its
    CSV downloads (``observation_date,DGS2``, daily on weekdays, ``.`` on a holiday); and
    ``cot_EUR`` as rows of CFTC's Traders in Financial Futures report (Tuesdays, the
    market name, leveraged funds' long and short positions; a second market's rows too),
    starting 160 weeks early as KTRDR fetches it.

    Returns:
        The written paths.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(_FORMATS)}, got {fmt!r}")
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1000])
    end = SAMPLE_START + pd.Timedelta(hours=bars)
    hourly = generate_hourly(CONTEXT_SYMBOL, bars, seed, len(_START_PRICES))
    table = hourly.reset_index()
    table["timestamp"] = table["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    tables = {f"{CONTEXT_SYMBOL}_1h": table}
    days = pd.bdate_range(SAMPLE_START - pd.Timedelta(days=40), end + pd.Timedelta(days=2))
    for series, level in CONTEXT_YIELDS.items():
        values = level + np.cumsum(rng.normal(0.0, 0.04, len(days)))
        text = np.char.mod("%.2f", values).astype(object)
        text[(days.month == 1) & (days.day == 16)] = "."  # FRED's mark for a holiday
        tables[series] = pd.DataFrame({"observation_date": days.strftime("%Y-%m-%d"), series: text})
    tuesdays = pd.date_range(
        SAMPLE_START - pd.Timedelta(weeks=_COT_HISTORY_WEEKS), end, freq="W-TUE"
    )
    rows = []
    for market, scale in (("EURO FX - CHICAGO MERCANTILE EXCHANGE", 1.0), ("BRITISH POUND", 0.5)):
        net = np.cumsum(rng.normal(0.0, 4000.0 * scale, len(tuesdays)))
        longs = np.round(60000.0 * scale + np.maximum(net, 0) + rng.uniform(0, 5000, len(net)))
        shorts = np.round(60000.0 * scale + np.maximum(-net, 0) + rng.uniform(0, 5000, len(net)))
        rows.append(
            pd.DataFrame(
                {
                    "Market_and_Exchange_Names": market,
                    "Report_Date_as_YYYY-MM-DD": tuesdays.strftime("%Y-%m-%d"),
                    "Lev_Money_Positions_Long_All": longs,
                    "Lev_Money_Positions_Short_All": shorts,
                }
            )
        )
    tables[f"cot_{CONTEXT_COT_REPORT}"] = pd.concat(rows, ignore_index=True)
    written = []
    for name, frame in tables.items():
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False, float_format="%.6f")
        else:
            frame.astype({c: str for c in frame.columns if frame[c].dtype == object}).to_parquet(
                path, index=False
            )
        written.append(path)
    return written
