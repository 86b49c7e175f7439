"""Features of one symbol: indicators on every timeframe, aligned onto the base timeframe.

Timestamp convention: every timestamp is a bar's OPEN time, and a bar's values
are known at its close (``open + timeframe``; daily bars: ``bar_times``). A base bar
therefore sees a higher-timeframe bar only once that bar has closed: a 4h bar stamped 08:00
closes at 12:00 and is first visible to the 1h bar stamped 11:00 (which also
closes at 12:00); the 1h bars stamped 08:00-10:00 still see the 4h bar of 04:00.

Feature names are ``{timeframe}_{feature_id}`` for an indicator's main output,
``{timeframe}_{feature_id}_{output}`` for its other outputs (``1h_macd_12_26_9_hist``),
``{timeframe}_{feature_id}_{set}`` for a fuzzy membership (``4h_rsi_14_oversold``)
and ``{timeframe}_price_{name}`` for the optional price context. Order: timeframes
as listed in the strategy; within one, indicators in file order, each followed by
its fuzzy sets; then price context.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training_engine.bar_times import bar_close_times
from training_engine.data import timeframe_delta
from training_engine.errors import DataValidationError, StrategyConfigError
from training_engine.fuzzy import membership
from training_engine.indicators import compute_indicator
from training_engine.strategy import StrategyConfig


def price_context(frame: pd.DataFrame) -> pd.DataFrame:
    """Scale-free facts about each bar: its return, range and body, and relative volume."""
    close = frame["close"]
    volume_average = frame["volume"].rolling(20).mean()
    return pd.DataFrame(
        {
            "price_return": np.log(close / close.shift(1)),
            "price_range": (frame["high"] - frame["low"]) / close,
            "price_body": (close - frame["open"]) / frame["open"],
            "price_volume": (frame["volume"] / volume_average.where(volume_average > 0)).fillna(
                1.0
            ),
        },
        index=frame.index,
    )


def timeframe_features(strategy: StrategyConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """Indicator outputs and fuzzy memberships on one timeframe's own bars (unprefixed)."""
    parts: list[pd.DataFrame] = []
    for spec in strategy.indicators:
        outputs = compute_indicator(spec, frame)
        parts.append(outputs)
        main = outputs.iloc[:, 0].to_numpy()
        for fuzzy_set in strategy.fuzzy_sets.get(spec.feature_id, ()):
            name = f"{spec.feature_id}_{fuzzy_set.name}"
            parts.append(pd.DataFrame({name: membership(main, fuzzy_set)}, index=frame.index))
    if strategy.features.include_price_context:
        parts.append(price_context(frame))
    result = pd.concat(parts, axis=1)
    duplicated = result.columns[result.columns.duplicated()].tolist()
    if duplicated:
        raise StrategyConfigError(
            "fuzzy_sets", f"feature names collide: {duplicated}; rename the fuzzy set"
        )
    return result


def align_to_base(
    features: pd.DataFrame,
    timeframe: str,
    base_index: pd.DatetimeIndex,
    base_timeframe: str,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """For each base bar, the latest ``timeframe`` row whose bar had closed by the base close.

    Closes are :func:`~training_engine.bar_times.bar_close_times` (a daily bar on a 25-hour
    day closes 25 hours after it opens). Base bars before the first such close get NaN
    (dropped later as warm-up).
    """
    closes = bar_close_times(pd.DatetimeIndex(features.index), timeframe_delta(timeframe), timezone)
    right = features.set_axis(pd.DatetimeIndex(closes, name="_available_at"), axis=0)
    base_closes = bar_close_times(base_index, timeframe_delta(base_timeframe), timezone)
    left = pd.DataFrame({"_available_at": base_closes})
    merged = pd.merge_asof(
        left,
        right.reset_index(),
        on="_available_at",
        direction="backward",
        allow_exact_matches=True,
    )
    return merged.drop(columns="_available_at").set_axis(base_index, axis=0)


def compute_features(strategy: StrategyConfig, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Raw (unnormalised) features of one symbol, on base-timeframe bars.

    Args:
        strategy: which indicators, fuzzy sets and timeframes.
        frames: timeframe -> OHLCV frame of one symbol (as from ``load_ohlcv``).

    Returns:
        One row per base bar (index: base bar open time), columns in
        feature-name order; the warm-up rows with any NaN are dropped.

    Raises:
        DataValidationError: a timeframe of the strategy has no frame.
    """
    missing = [tf for tf in strategy.timeframes if tf not in frames]
    if missing:
        raise DataValidationError(f"no data frame for timeframe(s) {', '.join(missing)}")
    base = strategy.base_timeframe
    base_index = pd.DatetimeIndex(frames[base].index)
    columns: list[pd.DataFrame] = []
    for timeframe in strategy.timeframes:
        own = timeframe_features(strategy, frames[timeframe])
        if timeframe != base:
            own = align_to_base(own, timeframe, base_index, base, strategy.timezone)
        columns.append(own.add_prefix(f"{timeframe}_"))
    combined = pd.concat(columns, axis=1).astype("float64")
    # Only the leading warm-up can be NaN; dropping per row keeps the rest contiguous.
    valid = combined.notna().all(axis=1).to_numpy()
    first_valid = int(np.argmax(valid)) if valid.any() else len(valid)
    result = combined.iloc[first_valid:]
    return result.loc[result.notna().all(axis=1)]
