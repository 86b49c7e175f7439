"""Predictions per bar from OHLCV frames, with the features computed as training computed them.

A saved model holds its strategy (indicators, fuzzy sets, timeframes, lookback, how the
data stamps its bars), its feature names and the normalisation fitted on its train part.
:func:`predict_bars` runs the same code the training ran on the same kind of frames:
``repair_ohlcv`` and ``at_open_times`` (as ``load_ohlcv`` reads a file), then
``compute_feature_matrix`` (indicators, fuzzy memberships, higher timeframes aligned onto
the base bars once closed), then windows of ``lookback`` rows normalised inside
:class:`~training_engine.artifacts.TrainedModel`. So a bar's prediction reads that bar and
earlier ones only: appending later bars, or the still-open bar of a higher timeframe, does
not change it.

One call takes the bars of one symbol: the features of a symbol never read another's,
so a model trained on several symbols predicts for each of them (or for another symbol)
one call at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from training_engine.data import at_open_times, repair_ohlcv
from training_engine.dataset import make_windows
from training_engine.errors import ArtifactError, DataValidationError
from training_engine.features import compute_feature_matrix

if TYPE_CHECKING:
    from training_engine.artifacts import TrainedModel

# One symbol's bars: a frame (a model of one timeframe) or {timeframe: frame}.
BarFrames = pd.DataFrame | Mapping[str, pd.DataFrame]
# Windows predicted at once: bounds the memory of a long history to a few MB per chunk.
WINDOWS_PER_CHUNK = 4096
VALUE_COLUMN = "value"
LABEL_COLUMN = "label"


def predict_bars(
    model: TrainedModel, bars: BarFrames, context_dir: Path | None = None
) -> pd.DataFrame:
    """The model's prediction for every bar of the base timeframe.

    Args:
        model: a model directory loaded by ``load_trained_model``.
        bars: one symbol's OHLCV bars, as the data files hold them: a DataFrame (for a
            model of one timeframe) or ``{timeframe: DataFrame}`` with every timeframe
            the model reads. Columns open, high, low, close, volume (any case, an
            adjusted close honoured); timestamps as a ``timestamp``/``date`` column or
            as the index, naive ones read in the strategy's timezone.
        context_dir: the folder holding the strategy's context series (``context_data``:
            another instrument, FRED series, COT reports), named as in a data folder;
            needed only by a strategy that reads context data.

    Returns:
        One row per base bar, indexed by its timestamp (UTC, as given): a column of
        probabilities per class and ``label``, the most likely class, for a classifier;
        ``value`` for a regression model. Bars without a prediction (the indicators'
        warm-up and the first ``lookback - 1`` bars after it) hold NaN.

    Raises:
        DataValidationError: a timeframe the model reads has no frame, or a frame
            cannot be used (missing columns, unusable rows), or the strategy reads
            context series and no ``context_dir`` was given.
        ArtifactError: the features computed are not those the model was trained on.
    """
    strategy = model.strategy
    frames = {
        timeframe: repair_ohlcv(frame, f"{timeframe} bars", strategy.timezone)[0]
        for timeframe, frame in _frames_by_timeframe(model, bars).items()
    }
    # The bars' own stamps index the result (they differ from the open times the
    # features use when the strategy's data stamps bars at their close).
    stamps = pd.DatetimeIndex(frames[strategy.base_timeframe].index)
    for timeframe, frame in frames.items():
        at_open_times(frame, timeframe, strategy.bar_timestamp, strategy.timezone)
    context = None
    if strategy.context_data:
        if context_dir is None:
            raise DataValidationError(
                f"strategy '{strategy.name}' reads context series "
                f"({', '.join(sorted(strategy.context_sources))}): pass context_dir, the "
                "folder holding their files"
            )
        from training_engine.context_data import load_context

        context = load_context(strategy, context_dir)
    features = compute_feature_matrix(strategy, frames, dtype=np.float32, context=context)
    if list(features.names) != model.feature_names:
        raise ArtifactError(
            f"the bars give features {list(features.names)}, the model at {model.path} "
            f"was trained on {model.feature_names}"
        )
    outputs = _predict_windows(model, features.values)
    # Feature row k is a base bar; the rows of warm-up (and any with a gap in an
    # indicator) have no row, and a row has an output once lookback rows end at it.
    base_positions = frames[strategy.base_timeframe].index.get_indexer(features.index)
    predicted = base_positions[model.lookback - 1 :]
    return _prediction_frame(model, stamps, predicted, outputs)


def _frames_by_timeframe(model: TrainedModel, bars: BarFrames) -> dict[str, pd.DataFrame]:
    """``{timeframe: frame}`` for every timeframe the model reads; extra ones are left out."""
    timeframes = model.strategy.timeframes
    if isinstance(bars, pd.DataFrame):
        if len(timeframes) > 1:
            raise DataValidationError(
                f"this model reads timeframes {', '.join(timeframes)}: pass "
                "{timeframe: DataFrame} with one frame for each"
            )
        return {timeframes[0]: bars}
    missing = [timeframe for timeframe in timeframes if timeframe not in bars]
    if missing:
        given = ", ".join(map(str, bars)) or "none"
        raise DataValidationError(
            f"this model reads timeframes {', '.join(timeframes)}: no frame for "
            f"{', '.join(missing)} (given: {given})"
        )
    return {timeframe: bars[timeframe] for timeframe in timeframes}


def _predict_windows(model: TrainedModel, rows: np.ndarray) -> np.ndarray:
    """Outputs for the window ending at each row from ``lookback - 1`` on, chunk by chunk.

    Class probabilities ``[n, classes]``, or values ``[n, 1]`` for a regression model.
    """
    lookback, width = model.lookback, max(len(model.class_names), 1)
    count = max(len(rows) - lookback + 1, 0)
    outputs = np.empty((count, width), dtype=np.float32)
    for first in range(0, count, WINDOWS_PER_CHUNK):
        last = min(first + WINDOWS_PER_CHUNK, count)
        # Windows first..last-1 read rows first .. last + lookback - 2.
        windows = make_windows(rows[first : last + lookback - 1], lookback)
        if model.class_names:
            outputs[first:last] = model.predict_proba(windows)
        else:
            outputs[first:last, 0] = model.predict_values(windows)
    return outputs


def _prediction_frame(
    model: TrainedModel, stamps: pd.DatetimeIndex, positions: np.ndarray, outputs: np.ndarray
) -> pd.DataFrame:
    """One row per base bar: the outputs at ``positions``, NaN at the other bars."""
    names = model.class_names or [VALUE_COLUMN]
    values = np.full((len(stamps), len(names)), np.nan)
    values[positions] = outputs
    result = pd.DataFrame(values, index=stamps.rename("timestamp"), columns=names)
    if model.class_names:
        codes = np.full(len(stamps), -1, dtype=np.int64)  # -1: no label
        codes[positions] = outputs.argmax(axis=1)
        result[LABEL_COLUMN] = pd.Categorical.from_codes(codes, categories=pd.Index(names))
    return result
