"""From strategy and data folder to train/validation/test arrays, with no look-ahead.

Per symbol: load every timeframe, compute causal features on base bars
(:func:`compute_features`), label each base bar from the next
``labels.lookahead`` bars, and cut samples (a window of ``lookback`` feature
rows ending at bar t, labelled with bar t's class) into three consecutive
parts in time. Between two parts ``gap = lookahead + lookback - 1`` sample
positions are left out, so the last label of one part looks no further than
the bar before the first window of the next part begins. Symbols are split
separately and their parts concatenated in symbol order; nothing is shuffled.

Normalisation (mean/std per feature) is fitted on the feature rows that the
train windows use, of all symbols together, and applied to every part.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from training_engine.calendar_split import (
    SymbolTimeline,
    boundaries_at,
    common_boundaries,
    parts_by_time,
)
from training_engine.data import load_ohlcv_with_report
from training_engine.data_report import file_report
from training_engine.errors import DataValidationError
from training_engine.features import compute_features
from training_engine.labels import compute_labels
from training_engine.strategy import StrategyConfig

logger = logging.getLogger(__name__)

MIN_SAMPLES_PER_PART = 10
PART_NAMES = ("train", "validation", "test")

__all__ = [
    "NormalizationStats",
    "PreparedDataset",
    "SplitRange",
    "compute_features",
    "make_windows",
    "prepare_dataset",
    "split_sizes",
]


@dataclass(frozen=True)
class NormalizationStats:
    """Per-feature mean and standard deviation fitted on the train part."""

    mean: np.ndarray  # float32 [n_features]
    std: np.ndarray  # float32 [n_features], never 0 (constant features get 1)

    @classmethod
    def fit(cls, rows: np.ndarray) -> NormalizationStats:
        """Fit on feature rows ``[n, n_features]``."""
        values = np.asarray(rows, dtype=np.float64)
        std = values.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=values.mean(axis=0).astype(np.float32), std=std.astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Standardise an array whose last axis is the features."""
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> NormalizationStats:
        mean = np.asarray(data["mean"], dtype=np.float32)
        std = np.asarray(data["std"], dtype=np.float32)
        if mean.shape != std.shape or mean.ndim != 1:
            raise ValueError(
                f"mean and std must be equal-length lists, got {mean.shape}, {std.shape}"
            )
        return cls(mean=mean, std=np.where(std > 0, std, 1.0).astype(np.float32))


@dataclass(frozen=True)
class SplitRange:
    """Where one part of one symbol lies: the base bars its samples end at."""

    symbol: str
    part: str
    samples: int
    first_bar: pd.Timestamp | None  # None: no sample of this symbol in this part
    last_bar: pd.Timestamp | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, bars as ISO strings."""
        return {
            "symbol": self.symbol,
            "part": self.part,
            "samples": self.samples,
            "first_bar": None if self.first_bar is None else self.first_bar.isoformat(),
            "last_bar": None if self.last_bar is None else self.last_bar.isoformat(),
        }


@dataclass(frozen=True)
class PreparedDataset:
    """Everything the trainer needs; ``x_*`` are float32, ``y_*`` int64 (0 BUY, 1 HOLD, 2 SELL)."""

    x_train: np.ndarray  # [n, lookback, n_features], normalised when scale_features
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    normalization: NormalizationStats | None  # None when scale_features is false
    lookback: int
    symbols: tuple[str, ...]
    base_timeframe: str
    splits: tuple[SplitRange, ...] = ()
    # Per-sample loss weights of the train part (the labeller's, e.g. triple-barrier
    # uniqueness weights); None: every sample counts the same.
    w_train: np.ndarray | None = None
    # One entry per file read (``data_report.file_report``): repairs, gaps, splits, close.
    data_report: tuple[dict[str, Any], ...] = ()
    split_mode: str = "single symbol"  # calendar, per_symbol, or single symbol


def make_windows(features: np.ndarray, lookback: int) -> np.ndarray:
    """``[n, f]`` -> ``[n - lookback + 1, lookback, f]``; window k ends at row k + lookback - 1."""
    rows = np.asarray(features)
    if len(rows) < lookback:
        return np.empty((0, lookback, rows.shape[1]), dtype=rows.dtype)
    windows = sliding_window_view(rows, lookback, axis=0)  # [n - lb + 1, f, lb]
    return np.ascontiguousarray(windows.transpose(0, 2, 1))


def split_sizes(n_samples: int, fractions: Sequence[float], gap: int) -> tuple[int, int, int]:
    """Samples in train, validation and test once two gaps are taken out; may be < 1."""
    budget = n_samples - 2 * gap
    train = int(budget * fractions[0])
    validation = int(budget * fractions[1])
    return train, validation, budget - train - validation


@dataclass(frozen=True)
class _SymbolData:
    symbol: str
    features: pd.DataFrame
    labels: np.ndarray  # int64 per feature row, -1 where the row has no label
    parts: tuple[np.ndarray, np.ndarray, np.ndarray]  # sample end rows of each part
    reports: tuple[dict[str, Any], ...] = ()
    timeline: SymbolTimeline | None = None


def _prepare_symbol(
    strategy: StrategyConfig,
    data_dir: Path,
    symbol: str,
    start_date: str | None,
    end_date: str | None,
) -> _SymbolData:
    frames, reports = _load_frames(strategy, data_dir, symbol, start_date, end_date)
    base_close = frames[strategy.base_timeframe]["close"]
    features = compute_features(strategy, frames)
    labels = compute_labels(base_close, strategy.labels)
    row_labels = labels.reindex(features.index).fillna(-1).to_numpy(dtype=np.int64)

    lookback = strategy.features.lookback_periods
    lookahead = strategy.labels.lookahead
    gap = lookahead + lookback - 1
    ends = np.flatnonzero((row_labels >= 0) & (np.arange(len(features)) >= lookback - 1))
    split = strategy.data_split
    fractions = (split.train, split.validation, split.test)
    sizes = split_sizes(len(ends), fractions, gap)
    if min(sizes) < MIN_SAMPLES_PER_PART:
        warm_up = len(base_close) - len(features)
        needed = (
            warm_up
            + lookback
            - 1
            + lookahead
            + 2 * gap
            + math.ceil(MIN_SAMPLES_PER_PART / min(fractions))
        )
        raise DataValidationError(
            f"{symbol} {strategy.base_timeframe}: too little data for a "
            f"{split.train:g}/{split.validation:g}/{split.test:g} split: {len(base_close)} bars "
            f"present, at least {needed} needed ({warm_up} indicator warm-up, lookback "
            f"{lookback}, label lookahead {lookahead}, two gaps of {gap}, and "
            f"{MIN_SAMPLES_PER_PART} samples in the smallest part)"
        )
    n_train, n_val, _ = sizes
    val_start = n_train + gap
    test_start = val_start + n_val + gap
    parts = (ends[:n_train], ends[val_start : val_start + n_val], ends[test_start:])
    timeline = _timeline(symbol, features, base_close.index, ends, sizes, gap, lookback, lookahead)
    return _SymbolData(symbol, features, row_labels, parts, reports, timeline)


def _timeline(
    symbol: str,
    features: pd.DataFrame,
    base_index: pd.Index,
    ends: np.ndarray,
    sizes: tuple[int, int, int],
    gap: int,
    lookback: int,
    lookahead: int,
) -> SymbolTimeline:
    """The times of ``symbol``'s candidate samples, for a split on common boundaries."""
    rows = pd.DatetimeIndex(features.index)
    stamps = rows.asi8
    positions = pd.DatetimeIndex(base_index).get_indexer(rows[ends])
    base = pd.DatetimeIndex(base_index).asi8
    label_end = base[np.minimum(positions + lookahead, len(base) - 1)]
    n_train, n_val, _ = sizes
    val_start, test_start = n_train + gap, n_train + gap + n_val + gap
    own = (
        np.arange(n_train),
        np.arange(val_start, val_start + n_val),
        np.arange(test_start, len(ends)),
    )
    return SymbolTimeline(symbol, ends, stamps[ends - lookback + 1], stamps[ends], label_end, own)


def _split_on_common_calendar(
    per_symbol: list[_SymbolData], boundaries: tuple[int, ...] | None = None
) -> list[_SymbolData]:
    """Every symbol's parts cut at the same instants (``calendar_split``)."""
    timelines = [item.timeline for item in per_symbol if item.timeline is not None]
    cuts = boundaries or common_boundaries(timelines)
    result = []
    for item, timeline in zip(per_symbol, timelines, strict=True):
        train, validation, test = parts_by_time(timeline, *cuts)
        rows = timeline.rows
        result.append(replace(item, parts=(rows[train], rows[validation], rows[test])))
    return result


def _load_frames(
    strategy: StrategyConfig,
    data_dir: Path,
    symbol: str,
    start_date: str | None,
    end_date: str | None,
) -> tuple[dict[str, pd.DataFrame], tuple[dict[str, Any], ...]]:
    """Every timeframe's bars of ``symbol``, and the data report of each file."""
    frames: dict[str, pd.DataFrame] = {}
    reports: list[dict[str, Any]] = []
    for timeframe in strategy.timeframes:
        frame, quality = load_ohlcv_with_report(
            data_dir,
            symbol,
            timeframe,
            start_date,
            end_date,
            bar_timestamp=strategy.bar_timestamp,
            timezone=strategy.timezone,
        )
        frames[timeframe] = frame
        reports.append(file_report(symbol, timeframe, frame, quality))
    return frames, tuple(reports)


def prepare_dataset(
    strategy: StrategyConfig,
    data_dir: Path,
    start_date: str | None = None,
    end_date: str | None = None,
) -> PreparedDataset:
    """Load, featurise, label, split and normalise the strategy's data.

    Args:
        strategy: symbols, timeframes, indicators, labels, split, lookback.
        data_dir: folder of ``{SYMBOL}_{TIMEFRAME}.csv``/``.parquet`` files.
        start_date, end_date: optional inclusive bounds on bar open times.

    Raises:
        DataFileNotFoundError: a symbol/timeframe file is missing.
        DataValidationError: bad data, or too little of it for the split.
    """
    per_symbol = _load_symbols(strategy, Path(data_dir), start_date, end_date)
    split_mode = strategy.data_split.mode
    if len(per_symbol) > 1 and split_mode == "calendar":
        per_symbol = _split_on_common_calendar(per_symbol)
        _check_part_sizes(per_symbol)
    elif len(per_symbol) > 1:
        logger.warning(
            "data_split.mode per_symbol: each symbol is split on its own dates, so one "
            "symbol's validation/test period may lie inside another's train period"
        )
    return _assemble(strategy, per_symbol, split_mode if len(per_symbol) > 1 else "single symbol")


def prepare_walk_forward(
    strategy: StrategyConfig,
    data_dir: Path,
    start_date: str | None = None,
    end_date: str | None = None,
) -> Iterator[PreparedDataset]:
    """The folds of ``evaluation: {method: walk_forward, folds: K}``, one after the other.

    Expanding window: the last ``1 - (train + validation)`` of the samples is cut into K
    consecutive test blocks; fold k tests on block k, validates on the block of
    ``validation / test`` its size just before it, and trains on everything earlier. Parts
    are cut at common instants for all symbols (``calendar_split``), with the gap in time,
    and the test part ends where the next fold's test begins.
    """
    per_symbol = _load_symbols(strategy, Path(data_dir), start_date, end_date)
    split, folds = strategy.data_split, strategy.evaluation.folds
    first_test = split.train + split.validation
    block = (1.0 - first_test) / folds
    validation = block * split.validation / split.test
    timelines = [item.timeline for item in per_symbol if item.timeline is not None]
    for fold in range(folds):
        test_start = first_test + fold * block
        fractions = [test_start - validation, test_start]
        if fold + 1 < folds:
            fractions.append(test_start + block)
        cuts = boundaries_at(timelines, fractions)
        parts = _split_on_common_calendar(per_symbol, cuts)
        _check_part_sizes(parts, f"walk-forward fold {fold + 1} of {folds}")
        yield _assemble(strategy, parts, "walk_forward")


def _load_symbols(
    strategy: StrategyConfig, data_dir: Path, start_date: str | None, end_date: str | None
) -> list[_SymbolData]:
    if not strategy.symbols:
        raise DataValidationError(f"strategy '{strategy.name}' names no symbols")
    return [
        _prepare_symbol(strategy, data_dir, symbol, start_date, end_date)
        for symbol in strategy.symbols
    ]


def _assemble(
    strategy: StrategyConfig, per_symbol: list[_SymbolData], split_mode: str
) -> PreparedDataset:
    """Normalise on the train rows and gather every part's windows and labels."""
    lookback = strategy.features.lookback_periods
    names = list(per_symbol[0].features.columns)
    normalization: NormalizationStats | None = None
    if strategy.features.scale_features:
        train_rows = [
            item.features.to_numpy()[item.parts[0][0] - lookback + 1 : item.parts[0][-1] + 1]
            for item in per_symbol
            if len(item.parts[0])
        ]
        normalization = NormalizationStats.fit(np.concatenate(train_rows))

    xs: list[list[np.ndarray]] = [[], [], []]
    ys: list[list[np.ndarray]] = [[], [], []]
    splits: list[SplitRange] = []
    for item in per_symbol:
        rows = item.features.to_numpy(dtype=np.float32)
        if normalization is not None:
            rows = normalization.apply(rows)
        windows = make_windows(rows, lookback)
        for index, ends in enumerate(item.parts):
            xs[index].append(windows[ends - (lookback - 1)])
            ys[index].append(item.labels[ends])
            splits.append(
                SplitRange(
                    symbol=item.symbol,
                    part=PART_NAMES[index],
                    samples=len(ends),
                    first_bar=item.features.index[ends[0]] if len(ends) else None,
                    last_bar=item.features.index[ends[-1]] if len(ends) else None,
                )
            )
    x_train, x_val, x_test = (np.concatenate(parts).astype(np.float32) for parts in xs)
    y_train, y_val, y_test = (np.concatenate(parts).astype(np.int64) for parts in ys)
    return PreparedDataset(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        feature_names=names,
        normalization=normalization,
        lookback=lookback,
        symbols=tuple(strategy.symbols),
        base_timeframe=strategy.base_timeframe,
        splits=tuple(splits),
        data_report=tuple(report for item in per_symbol for report in item.reports),
        split_mode=split_mode,
    )


def _check_part_sizes(
    per_symbol: list[_SymbolData], split: str = "split on common calendar boundaries"
) -> None:
    """Each part of all symbols together needs ``MIN_SAMPLES_PER_PART`` samples."""
    for index, name in enumerate(PART_NAMES):
        total = sum(len(item.parts[index]) for item in per_symbol)
        if total < MIN_SAMPLES_PER_PART:
            spans = ", ".join(
                f"{item.symbol} {item.features.index[0]:%Y-%m-%d}.."
                f"{item.features.index[-1]:%Y-%m-%d}"
                for item in per_symbol
            )
            raise DataValidationError(
                f"{split}, the {name} part holds {total} samples "
                f"(at least {MIN_SAMPLES_PER_PART} needed): the symbols' dates overlap too "
                f"little ({spans}); use data that overlaps more, or data_split.mode per_symbol"
            )
