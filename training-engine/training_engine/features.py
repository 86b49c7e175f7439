"""Features of one symbol: indicators on every timeframe, aligned onto the base timeframe.

Timestamp convention: every timestamp is a bar's OPEN time, and a bar's values
are known at its close, ``open + timeframe``. A base bar therefore sees a
higher-timeframe bar only once that bar has closed: a 4h bar stamped 08:00
closes at 12:00 and is first visible to the 1h bar stamped 11:00 (which also
closes at 12:00); the 1h bars stamped 08:00-10:00 still see the 4h bar of 04:00.

What the network reads, as KTRDR builds it: a strategy with fuzzy sets feeds the
memberships of its fuzzy sets (all of them, or those its ``nn_inputs`` list, on the
timeframes listed there) and the raw indicator outputs ``nn_inputs`` name; the
indicators themselves are not inputs. Each fuzzy set reads the value KTRDR gives it:
the indicator output its group names, raw, or ``price / value`` under a
``price_ratio`` transform (``input_transform``, and SMA/EMA in v1/v2 files, as
KTRDR's trainer did). A strategy without fuzzy sets (the engine's own format) feeds
every indicator output raw. Price context is this engine's addition.

Feature names are ``{timeframe}_{feature_id}`` for an indicator's first output,
``{timeframe}_{feature_id}_{output}`` for its other outputs (``1h_macd_12_26_9_signal``),
``{timeframe}_{feature_id}_{set}`` for a fuzzy membership (``4h_rsi_14_oversold``;
``{feature_id}_{output}_{set}`` for a set on another output) and
``{timeframe}_price_{name}`` for the optional price context. Order: timeframes as
listed in the strategy; within one, indicators in file order, each followed by its
fuzzy sets; then price context.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

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


def _selected(strategy: StrategyConfig, timeframe: str) -> tuple[set[str] | None, list[str]]:
    """Fuzzy groups (None: all) and raw indicator references ``nn_inputs`` pick here."""
    if not strategy.nn_inputs:
        return None, []
    groups: set[str] = set()
    raw: list[str] = []
    for entry in strategy.nn_inputs:
        if entry.timeframes is not None and timeframe not in entry.timeframes:
            continue
        if entry.fuzzy_set is not None:
            groups.add(entry.fuzzy_set)
        elif entry.raw_indicator is not None:
            raw.append(entry.raw_indicator)
    return groups, raw


def fuzzy_input(values: pd.Series, frame: pd.DataFrame, transform: str | None) -> np.ndarray:
    """The value a fuzzy set reads: the output itself, or ``price / output``."""
    if transform is None:
        return values.to_numpy(dtype=np.float64)
    reference = transform.removeprefix("price_ratio:")
    ratio = frame[reference] / values.where(values != 0)
    return ratio.replace([np.inf, -np.inf], np.nan).to_numpy(dtype=np.float64)


def _column(reference: str) -> str:
    return reference.replace(".", "_")


def timeframe_features(
    strategy: StrategyConfig, frame: pd.DataFrame, timeframe: str | None = None
) -> pd.DataFrame:
    """Network inputs on one timeframe's own bars (unprefixed); see the module docstring."""
    fuzzy = strategy.fuzzy_sets
    groups, raw_inputs = _selected(strategy, timeframe or strategy.base_timeframe)
    parts: list[pd.DataFrame] = []
    for spec in strategy.indicators:
        outputs = compute_indicator(spec, frame)
        if not fuzzy:
            parts.append(outputs)
            continue
        mine = [k for k in fuzzy if k == spec.feature_id or k.startswith(f"{spec.feature_id}.")]
        for reference in mine:
            values = outputs[_column(reference)]
            for fuzzy_set in fuzzy[reference]:
                if groups is not None and fuzzy_set.group not in groups:
                    continue
                name = f"{_column(reference)}_{fuzzy_set.name}"
                x = fuzzy_input(values, frame, fuzzy_set.transform)
                parts.append(pd.DataFrame({name: membership(x, fuzzy_set)}, index=frame.index))
        for reference in raw_inputs:
            if reference == spec.feature_id or reference.startswith(f"{spec.feature_id}."):
                parts.append(outputs[[_column(reference)]])
    if strategy.features.include_price_context:
        parts.append(price_context(frame))
    if not parts:
        raise StrategyConfigError(
            "nn_inputs", f"no network input on timeframe {timeframe}: list one for it"
        )
    result = pd.concat(parts, axis=1)
    duplicated = result.columns[result.columns.duplicated()].tolist()
    if duplicated:
        raise StrategyConfigError(
            "fuzzy_sets", f"feature names collide: {duplicated}; rename the fuzzy set"
        )
    return result


def align_to_base(
    features: pd.DataFrame, timeframe: str, base_index: pd.DatetimeIndex, base_timeframe: str
) -> pd.DataFrame:
    """For each base bar, the latest ``timeframe`` row whose bar had closed by the base close.

    Base bars before the first such close get NaN (dropped later as warm-up).
    """
    closes = pd.DatetimeIndex(features.index) + timeframe_delta(timeframe)
    right = features.set_axis(pd.DatetimeIndex(closes, name="_available_at"), axis=0)
    left = pd.DataFrame({"_available_at": base_index + timeframe_delta(base_timeframe)})
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
        own = timeframe_features(strategy, frames[timeframe], timeframe)
        if timeframe != base:
            own = align_to_base(own, timeframe, base_index, base)
        columns.append(own.add_prefix(f"{timeframe}_"))
    combined = pd.concat(columns, axis=1).astype("float64")
    # Only the leading warm-up can be NaN; dropping per row keeps the rest contiguous.
    valid = combined.notna().all(axis=1).to_numpy()
    first_valid = int(np.argmax(valid)) if valid.any() else len(valid)
    result = combined.iloc[first_valid:]
    return result.loc[result.notna().all(axis=1)]
