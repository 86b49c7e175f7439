"""From strategy and data folder to train/validation/test arrays, with no look-ahead.

Per symbol: load every timeframe, compute causal features on base bars
(:func:`compute_features`), and cut sample positions (a window of ``lookback``
feature rows ending at bar t) into three consecutive parts in time with
``lookback - 1`` positions left out between two parts (so no window holds rows
of two parts). Several symbols are cut at common calendar instants
(:mod:`training_engine.calendar_split`, ``data_split.mode: calendar``) or each on
its own (``per_symbol``). Only then is each part labelled from its own prices
(:func:`label_parts`): the labeller sees the base bars up to the part's last bar
and no later one, so a bar whose label needs a later price has none and is
dropped. Labels such as KTRDR's ZigZag segments look ahead an unbounded number of
bars, which no fixed gap could contain. Parts of the symbols are concatenated in
symbol order; nothing is shuffled.

Normalisation (mean/std per feature) is fitted on the feature rows that the
train windows use, of all symbols together, and applied to every part.

Each feature row is stored once: the result holds the rows of all symbols and,
per part, the row each sample's window ends at. Windows are gathered per batch
(:mod:`training_engine.windows`), so memory grows with rows, not rows x lookback.
"""

from __future__ import annotations

import logging
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
from training_engine.context_data import ContextSeries, context_reports, load_context
from training_engine.data import load_ohlcv_with_report
from training_engine.data_report import file_report
from training_engine.errors import DataValidationError
from training_engine.features import compute_feature_matrix, compute_features
from training_engine.labels import fit_label_scale, label_bars
from training_engine.strategy import StrategyConfig
from training_engine.strategy.config import LabelConfig
from training_engine.strategy.names import CLASS_NAMES

logger = logging.getLogger(__name__)

MIN_SAMPLES_PER_PART = 10
PART_NAMES = ("train", "validation", "test")

__all__ = [
    "LabelledPart",
    "NormalizationStats",
    "PreparedDataset",
    "SplitRange",
    "compute_features",
    "dataset_from_windows",
    "label_parts",
    "make_windows",
    "prepare_dataset",
    "prepare_walk_forward",
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
    labels_end: pd.Timestamp | None = None  # the last base bar the part's labels read

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, bars as ISO strings."""
        return {
            "symbol": self.symbol,
            "part": self.part,
            "samples": self.samples,
            "first_bar": _iso(self.first_bar),
            "last_bar": _iso(self.last_bar),
            "labels_end": _iso(self.labels_end),
        }


def _iso(bar: pd.Timestamp | None) -> str | None:
    return None if bar is None else bar.isoformat()


@dataclass(frozen=True)
class PreparedDataset:
    """Everything the trainer needs, with each feature row stored once.

    ``rows`` holds every symbol's feature rows one symbol after another (float32,
    normalised when scale_features). A sample is the window of ``lookback`` rows
    ending at one of a part's ``*_ends`` (int64 row indices, never closer than
    ``lookback - 1`` to a symbol's first row, so no window spans two symbols);
    ``y_*`` are its labels: int64 classes (``class_names`` in order) or, for a
    regression target (``class_names`` empty), float32 values. ``w_train``: float32
    per-sample weights of the train part, beside ``y_train`` (triple-barrier
    uniqueness), or None. The windows themselves are gathered batch by batch
    (:mod:`training_engine.windows`), never stored.
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
    class_names: tuple[str, ...] = CLASS_NAMES
    w_train: np.ndarray | None = None
    # One entry per file read (``data_report.file_report``): repairs, gaps, splits, close.
    data_report: tuple[dict[str, Any], ...] = ()
    split_mode: str = "single symbol"  # calendar, per_symbol, walk_forward or single symbol

    @property
    def n_features(self) -> int:
        return int(self.rows.shape[1])

    @property
    def is_regression(self) -> bool:
        return not self.class_names


def dataset_from_windows(
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    feature_names: Sequence[str],
    normalization: NormalizationStats | None = None,
    symbols: tuple[str, ...] = ("SYNTHETIC",),
    base_timeframe: str = "1h",
    class_names: tuple[str, ...] = CLASS_NAMES,
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
    y_type = np.int64 if class_names else np.float32
    return PreparedDataset(
        rows=rows,
        train_ends=ends[0].astype(np.int64),
        y_train=np.asarray(parts[0][1], dtype=y_type),
        val_ends=ends[1].astype(np.int64),
        y_val=np.asarray(parts[1][1], dtype=y_type),
        test_ends=ends[2].astype(np.int64),
        y_test=np.asarray(parts[2][1], dtype=y_type),
        feature_names=list(feature_names),
        normalization=normalization,
        lookback=lookback,
        symbols=symbols,
        base_timeframe=base_timeframe,
        class_names=class_names,
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
class LabelledPart:
    """One part of one symbol: its sample end rows, their targets and weights."""

    ends: np.ndarray  # feature rows the samples end at
    targets: np.ndarray  # float64 per sample (classes as 0.0, 1.0, ...)
    weights: np.ndarray | None
    labels_end: pd.Timestamp | None  # the last base bar its labels read


def label_parts(
    base: pd.DataFrame,
    rows: pd.DatetimeIndex,
    parts: Sequence[np.ndarray],
    config: LabelConfig,
) -> tuple[LabelledPart, ...]:
    """Label each part from the base bars up to its own last bar; drop bars left unlabelled.

    Thresholds a labeller derives from prices (regime ZigZag thresholds, CUSUM's h) are
    fitted once, on the bars up to the first part's last bar (the train part, or the first
    part with samples), and applied to every part, as normalisation is.

    Args:
        base: the base timeframe's OHLCV bars.
        rows: the open time of each feature row (rows are a subset of ``base``'s bars).
        parts: per part, the feature rows its samples end at, in time order.
        config: the strategy's label source and settings.
    """
    positions = base.index.get_indexer(rows)
    fitted_on = next((ends for ends in parts if len(ends)), None)
    scale = (
        None
        if fitted_on is None
        else fit_label_scale(base.iloc[: int(positions[fitted_on[-1]]) + 1], config)
    )
    labelled: list[LabelledPart] = []
    for ends in parts:
        if len(ends) == 0:
            labelled.append(LabelledPart(ends, np.empty(0), None, None))
            continue
        last = int(positions[ends[-1]])
        bars = label_bars(base.iloc[: last + 1], config, scale)
        targets = bars.targets[positions[ends]]
        keep = ~np.isnan(targets)
        weights = None if bars.weights is None else bars.weights[positions[ends]][keep]
        labelled.append(LabelledPart(ends[keep], targets[keep], weights, base.index[last]))
    return tuple(labelled)


@dataclass(frozen=True)
class _SymbolData:
    """One symbol's feature rows and base bars; ``parts`` once it is split and labelled."""

    symbol: str
    rows: np.ndarray  # float32 [n_rows, n_features], raw (not normalised)
    base: pd.DataFrame  # the base bars, kept to label the parts once they are cut
    index: pd.DatetimeIndex  # the base bar of each row
    feature_names: tuple[str, ...]
    timeline: SymbolTimeline
    reports: tuple[dict[str, Any], ...] = ()
    parts: tuple[LabelledPart, ...] = ()  # train, validation, test


def _prepare_symbol(
    strategy: StrategyConfig,
    data_dir: Path,
    symbol: str,
    start_date: str | None,
    end_date: str | None,
    context: Mapping[str, ContextSeries] | None = None,
) -> _SymbolData:
    """Features and candidate sample positions, with the symbol's own split (unlabelled)."""
    frames, reports = _load_frames(strategy, data_dir, symbol, start_date, end_date)
    base = frames[strategy.base_timeframe]
    features = compute_feature_matrix(strategy, frames, dtype=np.float32, context=context)
    del frames  # only the base bars are needed once the features exist (to label)
    rows, index, names = features.values, features.index, features.names
    del features

    lookback = strategy.features.lookback_periods
    gap = lookback - 1
    candidates = np.arange(lookback - 1, len(rows))
    split = strategy.data_split
    sizes = split_sizes(len(candidates), (split.train, split.validation, split.test), gap)
    timeline = _timeline(symbol, index, candidates, sizes, gap, lookback)
    item = _SymbolData(symbol, rows, base, index, names, timeline, reports)
    _check_own_sizes(strategy, item, [len(part) for part in timeline.own_parts], "before")
    return item


def _timeline(
    symbol: str,
    index: pd.DatetimeIndex,
    ends: np.ndarray,
    sizes: tuple[int, int, int],
    gap: int,
    lookback: int,
) -> SymbolTimeline:
    """The times of ``symbol``'s candidate samples, for a split on common boundaries.

    A label reads no bar after its part's last sample (:func:`label_parts`), so a sample's
    label ends at its own bar.
    """
    stamps = index.asi8
    n_train, n_val, _ = (max(size, 0) for size in sizes)
    val_start, test_start = n_train + gap, n_train + gap + n_val + gap
    own = (
        np.arange(n_train),
        np.arange(val_start, min(val_start + n_val, len(ends))),
        np.arange(min(test_start, len(ends)), len(ends)),
    )
    sample_end = stamps[ends]
    return SymbolTimeline(symbol, ends, stamps[ends - lookback + 1], sample_end, sample_end, own)


def _labelled(
    item: _SymbolData, strategy: StrategyConfig, positions: Sequence[np.ndarray]
) -> _SymbolData:
    """``item`` with the parts at ``positions`` (of its timeline) labelled from their prices."""
    ends = [item.timeline.rows[part] for part in positions]
    return replace(item, parts=label_parts(item.base, item.index, ends, strategy.labels))


def _split_on_own_dates(strategy: StrategyConfig, item: _SymbolData) -> _SymbolData:
    """One symbol split on its own dates, each part labelled; too small a part is refused."""
    labelled = _labelled(item, strategy, item.timeline.own_parts)
    _check_own_sizes(strategy, item, [len(part.ends) for part in labelled.parts], "after")
    return labelled


def _check_own_sizes(
    strategy: StrategyConfig, item: _SymbolData, counts: Sequence[int], stage: str
) -> None:
    """Refuse a symbol whose own split leaves a part under ``MIN_SAMPLES_PER_PART``."""
    if min(counts) >= MIN_SAMPLES_PER_PART:
        return
    split = strategy.data_split
    lookback = strategy.features.lookback_periods
    warm_up = len(item.base) - len(item.rows)
    raise DataValidationError(
        f"{item.symbol} {strategy.base_timeframe}: too little data for a "
        f"{split.train:g}/{split.validation:g}/{split.test:g} split: {len(item.base)} bars "
        f"present ({warm_up} indicator warm-up, lookback {lookback}); {stage} labelling each "
        f"part from its own prices ({strategy.labels.source}) the parts hold "
        f"{counts[0]}/{counts[1]}/{counts[2]} samples, at least {MIN_SAMPLES_PER_PART} "
        "needed in each: use more data or a label setting that looks less far ahead"
    )


def _split_on_common_calendar(
    strategy: StrategyConfig,
    per_symbol: list[_SymbolData],
    boundaries: tuple[int, ...] | None = None,
) -> list[_SymbolData]:
    """Every symbol's parts cut at the same instants (``calendar_split``), then labelled."""
    timelines = [item.timeline for item in per_symbol]
    cuts = boundaries or common_boundaries(timelines)
    return [_labelled(item, strategy, parts_by_time(item.timeline, *cuts)) for item in per_symbol]


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
    train = item.parts[0].ends
    return item.rows[train[0] - lookback + 1 : train[-1] + 1]


def _split_ranges(item: _SymbolData) -> tuple[SplitRange, ...]:
    """Where each part of the symbol lies; a part with no sample has no bars."""
    return tuple(
        SplitRange(
            symbol=item.symbol,
            part=name,
            samples=len(part.ends),
            first_bar=item.index[part.ends[0]] if len(part.ends) else None,
            last_bar=item.index[part.ends[-1]] if len(part.ends) else None,
            labels_end=part.labels_end,
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
        DataFileNotFoundError: a symbol/timeframe file (or a context series') is missing.
        DataValidationError: bad data, or too little of it for the split.
    """
    per_symbol = _load_symbols(strategy, Path(data_dir), start_date, end_date)
    split_mode = strategy.data_split.mode
    if len(per_symbol) > 1 and split_mode == "calendar":
        per_symbol = _split_on_common_calendar(strategy, per_symbol)
        _check_part_sizes(per_symbol)
    else:
        if len(per_symbol) > 1:
            logger.warning(
                "data_split.mode per_symbol: each symbol is split on its own dates, so one "
                "symbol's validation/test period may lie inside another's train period"
            )
        per_symbol = [_split_on_own_dates(strategy, item) for item in per_symbol]
    # Labelled: the base bars are not needed again (a walk-forward run keeps them per fold).
    per_symbol = [replace(item, base=item.base.iloc[:0]) for item in per_symbol]
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
    timelines = [item.timeline for item in per_symbol]
    for fold in range(folds):
        test_start = first_test + fold * block
        fractions = [test_start - validation, test_start]
        if fold + 1 < folds:
            fractions.append(test_start + block)
        cuts = boundaries_at(timelines, fractions)
        parts = _split_on_common_calendar(strategy, per_symbol, cuts)
        _check_part_sizes(parts, f"walk-forward fold {fold + 1} of {folds}")
        yield _assemble(strategy, parts, "walk_forward", in_place=False)


def _load_symbols(
    strategy: StrategyConfig, data_dir: Path, start_date: str | None, end_date: str | None
) -> list[_SymbolData]:
    if not strategy.symbols:
        raise DataValidationError(f"strategy '{strategy.name}' names no symbols")
    # Context series are read once, whole; each symbol aligns them onto its own bars.
    context = load_context(strategy, data_dir)
    per_symbol = [
        _prepare_symbol(strategy, data_dir, symbol, start_date, end_date, context)
        for symbol in strategy.symbols
    ]
    first = per_symbol[0]
    per_symbol[0] = replace(first, reports=first.reports + context_reports(context))
    return per_symbol


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
            [_train_rows(item, lookback) for item in per_symbol if len(item.parts[0].ends)]
        )

    offsets = np.cumsum([0] + [len(item.rows) for item in per_symbol])[:-1]
    ends = [
        np.concatenate(
            [item.parts[k].ends + offset for item, offset in zip(per_symbol, offsets, strict=True)]
        )
        for k in range(3)
    ]
    class_names = strategy.labels.class_names
    y_type = np.int64 if class_names else np.float32
    labels = [
        np.concatenate([item.parts[k].targets for item in per_symbol]).astype(y_type)
        for k in range(3)
    ]
    w_train = _train_weights(per_symbol)
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
        y_train=labels[0],
        val_ends=ends[1].astype(np.int64),
        y_val=labels[1],
        test_ends=ends[2].astype(np.int64),
        y_test=labels[2],
        feature_names=names,
        normalization=normalization,
        lookback=lookback,
        symbols=tuple(strategy.symbols),
        base_timeframe=strategy.base_timeframe,
        splits=splits,
        class_names=class_names,
        w_train=w_train,
        data_report=report,
        split_mode=split_mode,
    )


def _train_weights(per_symbol: list[_SymbolData]) -> np.ndarray | None:
    """The labeller's per-sample train weights of all symbols, or None where one has none."""
    weights = [item.parts[0].weights for item in per_symbol if len(item.parts[0].ends)]
    if not weights or any(w is None for w in weights):
        return None
    return np.concatenate([w for w in weights if w is not None]).astype(np.float32)


def _check_part_sizes(
    per_symbol: list[_SymbolData], split: str = "split on common calendar boundaries"
) -> None:
    """Each part of all symbols together needs ``MIN_SAMPLES_PER_PART`` samples."""
    for index, name in enumerate(PART_NAMES):
        total = sum(len(item.parts[index].ends) for item in per_symbol)
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
