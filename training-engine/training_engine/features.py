"""Features of one symbol: indicators on every timeframe, aligned onto the base timeframe.

Timestamp convention: every timestamp is a bar's OPEN time, and a bar's values
are known at its close (``open + timeframe``; daily bars: ``bar_times``). A base bar
therefore sees a higher-timeframe bar only once that bar has closed: a 4h bar stamped 08:00
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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training_engine.bar_times import bar_close_times
from training_engine.context_data import ContextSeries, aligned_sources
from training_engine.data import timeframe_delta
from training_engine.errors import DataValidationError, StrategyConfigError
from training_engine.fuzzy import membership
from training_engine.indicators import KTRDR_INDICATORS, compute_indicator
from training_engine.strategy import FuzzySetSpec, IndicatorSpec, StrategyConfig

PRICE_CONTEXT_COLUMNS = ("price_return", "price_range", "price_body", "price_volume")


def price_context(frame: pd.DataFrame) -> pd.DataFrame:
    """Scale-free facts about each bar: its return, range and body, and relative volume."""
    close = frame["close"]
    volume_average = frame["volume"].rolling(20).mean()
    columns = (
        np.log(close / close.shift(1)),
        (frame["high"] - frame["low"]) / close,
        (close - frame["open"]) / frame["open"],
        (frame["volume"] / volume_average.where(volume_average > 0)).fillna(1.0),
    )
    return pd.DataFrame(dict(zip(PRICE_CONTEXT_COLUMNS, columns, strict=True)), index=frame.index)


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


def indicator_column(reference: str) -> str:
    """The column an indicator output gets: ``adx_14.plus_di`` -> ``adx_14_plus_di``."""
    return reference.replace(".", "_")


def output_column(reference: str, spec: IndicatorSpec) -> str | None:
    """The column of ``spec``'s outputs that ``reference`` (``id`` or ``id.output``) reads.

    None when ``reference`` reads another indicator. Ids may hold dots themselves
    (``zigzag_0.05``, ``bbands_20_2.5.lower``), so the output is what follows the id, and
    it must be one of ``spec``'s other outputs (a bare id reads the first).
    """
    if reference == spec.feature_id:
        return spec.feature_id
    output = reference.removeprefix(f"{spec.feature_id}.")
    if output == reference or output not in KTRDR_INDICATORS[spec.type].outputs[1:]:
        return None
    return f"{spec.feature_id}_{output}"


def reads_indicator(reference: str, spec: IndicatorSpec) -> bool:
    """Whether ``reference`` (``rsi_14``, ``adx_14.plus_di``) names an output of ``spec``."""
    return output_column(reference, spec) is not None


def fuzzy_input_name(reference: str, fuzzy_set: FuzzySetSpec) -> str:
    """A membership's feature name on one timeframe (unprefixed): ``rsi_14_oversold``."""
    return f"{indicator_column(reference)}_{fuzzy_set.name}"


def _input_bars(
    spec: IndicatorSpec, frame: pd.DataFrame, sources: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The bars ``spec`` runs on: the symbol's own, or its ``data_source`` aligned onto them."""
    if spec.data_source is None:
        return frame
    if spec.data_source not in sources:
        raise DataValidationError(
            f"indicator {spec.feature_id} reads context_data source {spec.data_source}, "
            "which was not loaded"
        )
    return sources[spec.data_source]


def _timeframe_columns(
    strategy: StrategyConfig,
    frame: pd.DataFrame,
    timeframe: str,
    sources: Mapping[str, pd.DataFrame] | None = None,
) -> Iterator[pd.DataFrame]:
    """Network inputs on one timeframe's own bars, in feature order (module docstring).

    ``sources``: the context series the indicators read, aligned onto ``frame``'s bars.
    """
    fuzzy = strategy.fuzzy_sets
    groups, raw_inputs = _selected(strategy, timeframe)
    produced = False
    for spec in strategy.indicators:
        outputs = compute_indicator(spec, _input_bars(spec, frame, sources or {}))
        if not fuzzy:
            produced = True
            yield outputs
            continue
        mine = {k: c for k in fuzzy if (c := output_column(k, spec)) is not None}
        for reference, column in mine.items():
            values = outputs[column]
            for fuzzy_set in fuzzy[reference]:
                if groups is not None and fuzzy_set.group not in groups:
                    continue
                name = fuzzy_input_name(reference, fuzzy_set)
                x = fuzzy_input(values, frame, fuzzy_set.transform)
                produced = True
                yield pd.DataFrame({name: membership(x, fuzzy_set)}, index=frame.index)
        for reference in raw_inputs:
            raw_column = output_column(reference, spec)
            if raw_column is not None:
                produced = True
                yield outputs[[raw_column]].set_axis([indicator_column(reference)], axis=1)
    if strategy.features.include_price_context:
        produced = True
        yield price_context(frame)
    if not produced:
        raise StrategyConfigError(
            "nn_inputs", f"no network input on timeframe {timeframe}: list one for it"
        )


def _check_unique(names: Sequence[str]) -> None:
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise StrategyConfigError(
            "fuzzy_sets", f"feature names collide: {duplicated}; rename the fuzzy set"
        )


def timeframe_features(
    strategy: StrategyConfig,
    frame: pd.DataFrame,
    timeframe: str | None = None,
    sources: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Network inputs on one timeframe's own bars (unprefixed); see the module docstring.

    ``sources``: the context series the indicators read, aligned onto ``frame``'s bars.
    """
    columns = _timeframe_columns(strategy, frame, timeframe or strategy.base_timeframe, sources)
    result = pd.concat(list(columns), axis=1)
    _check_unique([str(name) for name in result.columns])
    return result


def _latest_closed(
    index: pd.DatetimeIndex,
    timeframe: str,
    base_index: pd.DatetimeIndex,
    base_timeframe: str,
    timezone: str = "UTC",
) -> np.ndarray:
    """Per base bar, the position of the latest ``timeframe`` bar closed by its close; -1: none.

    Closes are :func:`~training_engine.bar_times.bar_close_times`.
    """
    closes = bar_close_times(pd.DatetimeIndex(index), timeframe_delta(timeframe), timezone).asi8
    base_closes = bar_close_times(
        pd.DatetimeIndex(base_index), timeframe_delta(base_timeframe), timezone
    ).asi8
    positions: np.ndarray = np.searchsorted(closes, base_closes, side="right") - 1
    return positions


def _take_aligned(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    taken = values[np.maximum(positions, 0)].astype(np.float64)
    taken[positions < 0] = np.nan
    return taken


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
    positions = _latest_closed(
        pd.DatetimeIndex(features.index), timeframe, base_index, base_timeframe, timezone
    )
    return pd.DataFrame(
        {
            name: _take_aligned(features[name].to_numpy(np.float64), positions)
            for name in features.columns
        },
        index=base_index,
    )


@dataclass(frozen=True)
class FeatureMatrix:
    """A symbol's features as one ``[rows, features]`` array, warm-up rows dropped."""

    values: np.ndarray  # C-contiguous [rows, features], the dtype asked for
    index: pd.DatetimeIndex  # the base bars of the rows
    names: tuple[str, ...]


def compute_feature_matrix(
    strategy: StrategyConfig,
    frames: Mapping[str, pd.DataFrame],
    dtype: type[np.floating[Any]] = np.float64,
    context: Mapping[str, ContextSeries] | None = None,
) -> FeatureMatrix:
    """Raw (unnormalised) features of one symbol, written column by column into one array.

    Each column is cast into the result as soon as it is computed, so memory holds
    the result plus one indicator's intermediates, never a frame of all columns.

    Args:
        strategy: which indicators, fuzzy sets and timeframes.
        frames: timeframe -> OHLCV frame of one symbol (as from ``load_ohlcv``).
        dtype: of the result (float32 for training; the indicators run in float64).
        context: the strategy's context series (``context_data.load_context``), aligned
            onto each timeframe's bars for the indicators with a ``data_source``.

    Raises:
        DataValidationError: a timeframe of the strategy has no frame.
    """
    missing = [tf for tf in strategy.timeframes if tf not in frames]
    if missing:
        raise DataValidationError(f"no data frame for timeframe(s) {', '.join(missing)}")
    base = strategy.base_timeframe
    base_index = pd.DatetimeIndex(frames[base].index)
    capacity = 16
    values = np.empty((len(base_index), capacity), dtype=dtype)
    incomplete = np.zeros(len(base_index), dtype=bool)
    names: list[str] = []
    for timeframe in strategy.timeframes:
        frame = frames[timeframe]
        positions = (
            None
            if timeframe == base
            else _latest_closed(
                pd.DatetimeIndex(frame.index), timeframe, base_index, base, strategy.timezone
            )
        )
        sources = aligned_sources(context, strategy, pd.DatetimeIndex(frame.index), timeframe)
        for block in _timeframe_columns(strategy, frame, timeframe, sources):
            for name in block.columns:
                column = block[name].to_numpy(np.float64)
                if positions is not None:
                    column = _take_aligned(column, positions)
                if len(names) == capacity:  # grow by doubling (rarely more than once)
                    capacity *= 2
                    grown = np.empty((len(base_index), capacity), dtype=dtype)
                    grown[:, : len(names)] = values
                    values = grown
                values[:, len(names)] = column
                incomplete |= np.isnan(column)
                names.append(f"{timeframe}_{name}")
    _check_unique(names)
    # Only the leading warm-up can be NaN; when it is, the rows kept are a view.
    first = int(np.argmin(incomplete)) if not incomplete.all() else len(incomplete)
    if incomplete[first:].any():
        keep = ~incomplete
        kept, index = values[keep, : len(names)], base_index[keep]
    else:
        kept, index = values[first:, : len(names)], base_index[first:]
    return FeatureMatrix(np.ascontiguousarray(kept), index, tuple(names))


def compute_features(
    strategy: StrategyConfig,
    frames: Mapping[str, pd.DataFrame],
    context: Mapping[str, ContextSeries] | None = None,
) -> pd.DataFrame:
    """Raw (unnormalised) features of one symbol, on base-timeframe bars.

    Args:
        strategy: which indicators, fuzzy sets and timeframes.
        frames: timeframe -> OHLCV frame of one symbol (as from ``load_ohlcv``).
        context: the strategy's context series, if it has any (``load_context``).

    Returns:
        One row per base bar (index: base bar open time), float64 columns in
        feature-name order; the warm-up rows with any NaN are dropped.

    Raises:
        DataValidationError: a timeframe of the strategy has no frame.
    """
    matrix = compute_feature_matrix(strategy, frames, context=context)
    return pd.DataFrame(matrix.values, index=matrix.index, columns=list(matrix.names))
