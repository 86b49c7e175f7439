"""From strategy and data folder to train/validation/test arrays, with no look-ahead.

Per symbol: load every timeframe, compute causal features on base bars
(:func:`compute_features`), cut sample positions (a window of ``lookback``
feature rows ending at bar t) into three consecutive parts in time with
``lookback - 1`` positions left out between two parts (so no window holds rows
of two parts), then label each part from its own prices (:func:`label_parts`):
the labeller sees the base bars up to the part's last bar and no later one, so
a bar whose label needs a later price has none and is dropped. Labels such as
KTRDR's ZigZag segments look ahead an unbounded number of bars, which no fixed
gap could contain. Symbols are split separately and their parts concatenated
in symbol order; nothing is shuffled.

Normalisation (mean/std per feature) is fitted on the feature rows that the
train windows use, of all symbols together, and applied to every part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from training_engine.data import load_ohlcv
from training_engine.errors import DataValidationError
from training_engine.features import compute_features
from training_engine.labels import label_bars
from training_engine.strategy import StrategyConfig
from training_engine.strategy.config import LabelConfig

MIN_SAMPLES_PER_PART = 10
PART_NAMES = ("train", "validation", "test")

__all__ = [
    "LabelledPart",
    "NormalizationStats",
    "PreparedDataset",
    "SplitRange",
    "compute_features",
    "label_parts",
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
    first_bar: pd.Timestamp
    last_bar: pd.Timestamp
    labels_end: pd.Timestamp | None = None  # the last base bar the part's labels read


@dataclass(frozen=True)
class PreparedDataset:
    """Everything the trainer needs; ``x_*`` are float32.

    ``y_*`` are int64 classes (``class_names`` in order) or, for a regression
    target (``class_names`` empty), float32 values. ``w_train``: per-sample
    weights of the train part (triple-barrier uniqueness), or None.
    """

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
    class_names: tuple[str, ...] = ("BUY", "HOLD", "SELL")
    w_train: np.ndarray | None = None

    @property
    def is_regression(self) -> bool:
        return not self.class_names


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
class LabelledPart:
    """One part of one symbol: its sample end rows, their targets and weights."""

    ends: np.ndarray  # feature rows the samples end at
    targets: np.ndarray  # float64 per sample (classes as 0.0, 1.0, ...)
    weights: np.ndarray | None
    labels_end: pd.Timestamp | None  # the last base bar its labels read


@dataclass(frozen=True)
class _SymbolData:
    symbol: str
    features: pd.DataFrame
    parts: tuple[LabelledPart, ...]  # train, validation, test


def label_parts(
    base: pd.DataFrame,
    rows: pd.DatetimeIndex,
    parts: Sequence[np.ndarray],
    config: LabelConfig,
) -> tuple[LabelledPart, ...]:
    """Label each part from the base bars up to its own last bar; drop bars left unlabelled.

    Args:
        base: the base timeframe's OHLCV bars.
        rows: the open time of each feature row (rows are a subset of ``base``'s bars).
        parts: per part, the feature rows its samples end at, in time order.
        config: the strategy's label source and settings.
    """
    positions = base.index.get_indexer(rows)
    labelled: list[LabelledPart] = []
    for ends in parts:
        if len(ends) == 0:
            labelled.append(LabelledPart(ends, np.empty(0), None, None))
            continue
        last = int(positions[ends[-1]])
        bars = label_bars(base.iloc[: last + 1], config)
        targets = bars.targets[positions[ends]]
        keep = ~np.isnan(targets)
        weights = None if bars.weights is None else bars.weights[positions[ends]][keep]
        labelled.append(LabelledPart(ends[keep], targets[keep], weights, base.index[last]))
    return tuple(labelled)


def _prepare_symbol(
    strategy: StrategyConfig,
    data_dir: Path,
    symbol: str,
    start_date: str | None,
    end_date: str | None,
) -> _SymbolData:
    frames = {
        tf: load_ohlcv(data_dir, symbol, tf, start_date, end_date) for tf in strategy.timeframes
    }
    base = frames[strategy.base_timeframe]
    features = compute_features(strategy, frames)

    lookback = strategy.features.lookback_periods
    gap = lookback - 1
    candidates = np.arange(lookback - 1, len(features))
    split = strategy.data_split
    fractions = (split.train, split.validation, split.test)
    n_train, n_val, _ = split_sizes(len(candidates), fractions, gap)
    val_start = n_train + gap
    test_start = val_start + n_val + gap
    positions = (
        candidates[: max(n_train, 0)],
        candidates[val_start : val_start + max(n_val, 0)],
        candidates[test_start:],
    )
    parts = label_parts(base, pd.DatetimeIndex(features.index), positions, strategy.labels)
    counts = [len(part.ends) for part in parts]
    if min(counts) < MIN_SAMPLES_PER_PART:
        warm_up = len(base) - len(features)
        raise DataValidationError(
            f"{symbol} {strategy.base_timeframe}: too little data for a "
            f"{split.train:g}/{split.validation:g}/{split.test:g} split: {len(base)} bars "
            f"present ({warm_up} indicator warm-up, lookback {lookback}); after labelling each "
            f"part from its own prices ({strategy.labels.source}) the parts hold "
            f"{counts[0]}/{counts[1]}/{counts[2]} samples, at least {MIN_SAMPLES_PER_PART} "
            "needed in each: use more data or a label setting that looks less far ahead"
        )
    return _SymbolData(symbol, features, parts)


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
    if not strategy.symbols:
        raise DataValidationError(f"strategy '{strategy.name}' names no symbols")
    lookback = strategy.features.lookback_periods
    per_symbol = [
        _prepare_symbol(strategy, Path(data_dir), symbol, start_date, end_date)
        for symbol in strategy.symbols
    ]
    names = list(per_symbol[0].features.columns)

    normalization: NormalizationStats | None = None
    if strategy.features.scale_features:
        train_rows = [
            item.features.to_numpy()[
                item.parts[0].ends[0] - lookback + 1 : item.parts[0].ends[-1] + 1
            ]
            for item in per_symbol
        ]
        normalization = NormalizationStats.fit(np.concatenate(train_rows))

    xs: list[list[np.ndarray]] = [[], [], []]
    ys: list[list[np.ndarray]] = [[], [], []]
    train_weights: list[np.ndarray] = []
    splits: list[SplitRange] = []
    for item in per_symbol:
        rows = item.features.to_numpy(dtype=np.float32)
        if normalization is not None:
            rows = normalization.apply(rows)
        windows = make_windows(rows, lookback)
        for index, part in enumerate(item.parts):
            ends = part.ends
            xs[index].append(windows[ends - (lookback - 1)])
            ys[index].append(part.targets)
            if index == 0 and part.weights is not None:
                train_weights.append(part.weights)
            splits.append(
                SplitRange(
                    symbol=item.symbol,
                    part=PART_NAMES[index],
                    samples=len(ends),
                    first_bar=item.features.index[ends[0]],
                    last_bar=item.features.index[ends[-1]],
                    labels_end=part.labels_end,
                )
            )
    x_train, x_val, x_test = (np.concatenate(parts).astype(np.float32) for parts in xs)
    class_names = strategy.labels.class_names
    y_type = np.int64 if class_names else np.float32
    y_train, y_val, y_test = (np.concatenate(parts).astype(y_type) for parts in ys)
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
        class_names=class_names,
        w_train=np.concatenate(train_weights).astype(np.float32) if train_weights else None,
    )
