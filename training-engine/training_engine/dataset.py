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

Each feature row is stored once: the result holds the rows of all symbols and,
per part, the row each sample's window ends at. Windows are gathered per batch
(:mod:`training_engine.windows`), so memory grows with rows, not rows x lookback.
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
from training_engine.features import compute_feature_matrix, compute_features
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
    "dataset_from_windows",
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
        return cls.fit_blocks([rows])

    @classmethod
    def fit_blocks(cls, blocks: Sequence[np.ndarray]) -> NormalizationStats:
        """Fit on the rows of several ``[n_i, n_features]`` blocks taken together.

        Two passes in float64 over chunks, so no float64 copy of all rows is made.
        """
        count = sum(len(block) for block in blocks)
        total = sum(
            (chunk.sum(axis=0, dtype=np.float64) for chunk in _chunks(blocks)),
            start=np.zeros(blocks[0].shape[1]),
        )
        mean = total / count
        squares = sum(
            (((chunk.astype(np.float64) - mean) ** 2).sum(axis=0) for chunk in _chunks(blocks)),
            start=np.zeros_like(mean),
        )
        std = np.sqrt(squares / count)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=mean.astype(np.float32), std=std.astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Standardise an array whose last axis is the features."""
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def apply_in_place(self, rows: np.ndarray) -> None:
        """Standardise float32 ``rows`` in place; the same float32 arithmetic as :meth:`apply`."""
        rows -= self.mean
        rows /= self.std

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


def _chunks(blocks: Sequence[np.ndarray], rows: int = 65_536) -> Iterator[np.ndarray]:
    for block in blocks:
        for start in range(0, len(block), rows):
            yield block[start : start + rows]


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
    """Everything the trainer needs, with each feature row stored once.

    ``rows`` holds every symbol's feature rows one symbol after another (float32,
    normalised when scale_features). A sample is the window of ``lookback`` rows
    ending at one of a part's ``*_ends`` (int64 row indices, never closer than
    ``lookback - 1`` to a symbol's first row, so no window spans two symbols);
    ``y_*`` are its labels (int64: 0 BUY, 1 HOLD, 2 SELL). The windows themselves are
    gathered batch by batch (:mod:`training_engine.windows`), never stored.
    """

    rows: np.ndarray  # float32 [n_rows, n_features]
    train_ends: np.ndarray  # int64 [n_train]
    y_train: np.ndarray
    val_ends: np.ndarray
    y_val: np.ndarray
    test_ends: np.ndarray
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

    @property
    def n_features(self) -> int:
        return int(self.rows.shape[1])


def dataset_from_windows(
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    feature_names: Sequence[str],
    normalization: NormalizationStats | None = None,
    symbols: tuple[str, ...] = ("SYNTHETIC",),
    base_timeframe: str = "1h",
) -> PreparedDataset:
    """A dataset from ready-made (train, validation, test) windows ``[n, lookback, f]``.

    The windows are laid end to end as rows, so each row belongs to one window; for
    synthetic data in tests and benchmarks, where windows need not overlap.
    """
    lookback = int(parts[0][0].shape[1])
    rows = np.concatenate([x.reshape(-1, x.shape[2]) for x, _ in parts]).astype(np.float32)
    starts = np.cumsum([0] + [len(x) for x, _ in parts])[:-1]
    ends = [
        (start + np.arange(len(x))) * lookback + lookback - 1
        for start, (x, _) in zip(starts, parts, strict=True)
    ]
    return PreparedDataset(
        rows=rows,
        train_ends=ends[0].astype(np.int64),
        y_train=np.asarray(parts[0][1], dtype=np.int64),
        val_ends=ends[1].astype(np.int64),
        y_val=np.asarray(parts[1][1], dtype=np.int64),
        test_ends=ends[2].astype(np.int64),
        y_test=np.asarray(parts[2][1], dtype=np.int64),
        feature_names=list(feature_names),
        normalization=normalization,
        lookback=lookback,
        symbols=symbols,
        base_timeframe=base_timeframe,
    )


def make_windows(features: np.ndarray, lookback: int) -> np.ndarray:
    """``[n, f]`` -> ``[n - lookback + 1, lookback, f]``; window k ends at row k + lookback - 1.

    A materialised copy, ``lookback`` times the rows' size: for small inputs and tests.
    """
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
    rows: np.ndarray  # float32 [n_rows, n_features], raw (not normalised)
    labels: np.ndarray  # int64 per feature row, -1 where the row has no label
    parts: tuple[np.ndarray, np.ndarray, np.ndarray]  # sample end rows of each part
    index: pd.DatetimeIndex  # the base bar of each row
    feature_names: tuple[str, ...]
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
    base_index = pd.DatetimeIndex(frames[strategy.base_timeframe].index)
    n_bars = len(base_index)
    labels = compute_labels(frames[strategy.base_timeframe]["close"], strategy.labels)
    features = compute_feature_matrix(strategy, frames, dtype=np.float32)
    del frames  # the per-timeframe bars are not needed once the features exist
    rows, index, names = features.values, features.index, features.names
    row_labels = labels.reindex(index).fillna(-1).to_numpy(dtype=np.int64)
    del features, labels

    lookback = strategy.features.lookback_periods
    lookahead = strategy.labels.lookahead
    gap = lookahead + lookback - 1
    ends = np.flatnonzero((row_labels >= 0) & (np.arange(len(rows)) >= lookback - 1))
    split = strategy.data_split
    fractions = (split.train, split.validation, split.test)
    sizes = split_sizes(len(ends), fractions, gap)
    if min(sizes) < MIN_SAMPLES_PER_PART:
        warm_up = n_bars - len(rows)
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
            f"{split.train:g}/{split.validation:g}/{split.test:g} split: {n_bars} bars "
            f"present, at least {needed} needed ({warm_up} indicator warm-up, lookback "
            f"{lookback}, label lookahead {lookahead}, two gaps of {gap}, and "
            f"{MIN_SAMPLES_PER_PART} samples in the smallest part)"
        )
    n_train, n_val, _ = sizes
    val_start = n_train + gap
    test_start = val_start + n_val + gap
    parts = (ends[:n_train], ends[val_start : val_start + n_val], ends[test_start:])
    timeline = _timeline(symbol, index, base_index, ends, sizes, gap, lookback, lookahead)
    return _SymbolData(symbol, rows, row_labels, parts, index, names, reports, timeline)


def _timeline(
    symbol: str,
    index: pd.DatetimeIndex,
    base_index: pd.DatetimeIndex,
    ends: np.ndarray,
    sizes: tuple[int, int, int],
    gap: int,
    lookback: int,
    lookahead: int,
) -> SymbolTimeline:
    """The times of ``symbol``'s candidate samples, for a split on common boundaries."""
    stamps = index.asi8
    positions = base_index.get_indexer(index[ends])
    base = base_index.asi8
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


def _train_rows(item: _SymbolData, lookback: int) -> np.ndarray:
    """The rows the symbol's train windows read (a view)."""
    train = item.parts[0]
    return item.rows[train[0] - lookback + 1 : train[-1] + 1]


def _split_ranges(item: _SymbolData) -> tuple[SplitRange, ...]:
    """Where each part of the symbol lies; a part with no sample has no bars."""
    return tuple(
        SplitRange(
            symbol=item.symbol,
            part=name,
            samples=len(part),
            first_bar=item.index[part[0]] if len(part) else None,
            last_bar=item.index[part[-1]] if len(part) else None,
        )
        for name, part in zip(PART_NAMES, item.parts, strict=True)
    )


def prepare_dataset(
    strategy: StrategyConfig,
    data_dir: Path,
    start_date: str | None = None,
    end_date: str | None = None,
) -> PreparedDataset:
    """Load, featurise, label, split and normalise the strategy's data.

    Memory stays a small multiple of the feature rows: each row is stored once
    (float32), and a symbol's bars are dropped once its features exist.

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
        yield _assemble(strategy, parts, "walk_forward", in_place=False)


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
    strategy: StrategyConfig,
    per_symbol: list[_SymbolData],
    split_mode: str,
    *,
    in_place: bool = True,
) -> PreparedDataset:
    """Normalise on the train rows; every symbol's rows, and each part's ends and labels.

    ``in_place``: the symbols' rows may be normalised where they lie (they are not used
    again); otherwise (walk-forward folds) a normalised copy is made.
    """
    lookback = strategy.features.lookback_periods
    names = list(per_symbol[0].feature_names)
    normalization: NormalizationStats | None = None
    if strategy.features.scale_features:
        normalization = NormalizationStats.fit_blocks(
            [_train_rows(item, lookback) for item in per_symbol if len(item.parts[0])]
        )

    offsets = np.cumsum([0] + [len(item.rows) for item in per_symbol])[:-1]
    ends = [
        np.concatenate(
            [item.parts[k] + offset for item, offset in zip(per_symbol, offsets, strict=True)]
        )
        for k in range(3)
    ]
    labels = [np.concatenate([item.labels[item.parts[k]] for item in per_symbol]) for k in range(3)]
    splits = tuple(split for item in per_symbol for split in _split_ranges(item))
    report = tuple(entry for item in per_symbol for entry in item.reports)
    rows_of_each = [item.rows for item in per_symbol]
    del per_symbol
    if in_place:  # the symbols' rows are not used again: normalise them where they lie
        if normalization is not None:
            for symbol_rows in rows_of_each:
                normalization.apply_in_place(symbol_rows)
        rows = rows_of_each[0] if len(rows_of_each) == 1 else np.concatenate(rows_of_each)
    else:  # the raw rows serve other folds: normalise a copy
        rows = np.concatenate(rows_of_each)
        if normalization is not None:
            normalization.apply_in_place(rows)
    del rows_of_each
    return PreparedDataset(
        rows=rows,
        train_ends=ends[0].astype(np.int64),
        y_train=labels[0].astype(np.int64),
        val_ends=ends[1].astype(np.int64),
        y_val=labels[1].astype(np.int64),
        test_ends=ends[2].astype(np.int64),
        y_test=labels[2].astype(np.int64),
        feature_names=names,
        normalization=normalization,
        lookback=lookback,
        symbols=tuple(strategy.symbols),
        base_timeframe=strategy.base_timeframe,
        splits=splits,
        data_report=report,
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
                f"{item.symbol} {item.index[0]:%Y-%m-%d}..{item.index[-1]:%Y-%m-%d}"
                for item in per_symbol
            )
            raise DataValidationError(
                f"{split}, the {name} part holds {total} samples "
                f"(at least {MIN_SAMPLES_PER_PART} needed): the symbols' dates overlap too "
                f"little ({spans}); use data that overlaps more, or data_split.mode per_symbol"
            )
