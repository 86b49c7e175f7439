"""prepare_dataset: shapes, the gapped temporal split, train-only normalisation, no look-ahead."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_engine.dataset import (
    NormalizationStats,
    PreparedDataset,
    make_windows,
    prepare_dataset,
    split_sizes,
)
from training_engine.errors import DataValidationError
from training_engine.sample_data import write_sample_data
from training_engine.strategy import StrategyConfig, load_strategy
from training_engine.windows import gather_windows

from tests.engine.golden.strategy_cases import dataset_test


def _strategy(**overrides: object) -> StrategyConfig:
    return dataset_test(**overrides)


def test_make_windows_slides_over_rows_ending_at_each_row() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    windows = make_windows(rows, 3)
    assert windows.shape == (4, 3, 2)
    assert windows[0].tolist() == rows[0:3].tolist()
    assert windows[-1].tolist() == rows[3:6].tolist()
    assert make_windows(rows[:2], 3).shape == (0, 3, 2)


def test_prepared_dataset_has_the_promised_types_and_shapes(sample_data_dir: Path) -> None:
    data = prepare_dataset(_strategy(), sample_data_dir)
    n_features = len(data.feature_names)
    for x, y in (
        (gather_windows(data, "train"), data.y_train),
        (gather_windows(data, "val"), data.y_val),
        (gather_windows(data, "test"), data.y_test),
    ):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (4, n_features) and len(x) == len(y) > 0
        assert set(np.unique(y)) <= {0, 1, 2}
        assert np.isfinite(x).all()
    assert data.symbols == ("AAPL", "MSFT") and data.base_timeframe == "1h" and data.lookback == 4
    assert data.feature_names[0] == "1h_rsi_14" and "4h_roc_10" in data.feature_names
    assert data.normalization is not None
    # train part standardised by its own statistics
    assert np.allclose(gather_windows(data, "train")[:, -1].mean(axis=0), 0.0, atol=0.05)


def test_split_is_temporal_per_symbol_and_windows_never_hold_two_parts(
    sample_data_dir: Path,
) -> None:
    strategy = _strategy()
    data = prepare_dataset(strategy, sample_data_dir)
    lookback = strategy.features.lookback_periods
    assert [(r.symbol, r.part) for r in data.splits] == [
        (s, p) for s in ("AAPL", "MSFT") for p in ("train", "validation", "test")
    ]
    for symbol in ("AAPL", "MSFT"):
        parts = [r for r in data.splits if r.symbol == symbol]
        for earlier, later in itertools.pairwise(parts):
            bars_between = (later.first_bar - earlier.last_bar) // pd.Timedelta(hours=1)
            # the first window of `later` starts at first_bar - (lookback - 1), after the
            # bars `earlier` labels read (its labels_end)
            assert bars_between - (lookback - 1) > 0
            assert earlier.labels_end is not None
            assert earlier.labels_end < later.first_bar - pd.Timedelta(hours=lookback - 1)
    assert len(data.train_ends) == sum(r.samples for r in data.splits if r.part == "train")
    train, validation, test = (
        sum(r.samples for r in data.splits if r.part == p) for p in ("train", "validation", "test")
    )
    # parts lose the bars their own prices cannot label, so the shares move a little
    assert train / (train + validation + test) == pytest.approx(0.6, abs=0.03)


def test_split_sizes_leave_two_gaps_out() -> None:
    assert split_sizes(1000, (0.6, 0.2, 0.2), gap=50) == (540, 180, 180)


def _perturb_after(data_dir: Path, symbol: str, after: pd.Timestamp) -> None:
    """Scale every price of bars that close after ``after`` (1h and 4h files)."""
    rng = np.random.default_rng(11)
    for tf, hours in (("1h", 1), ("4h", 4)):
        path = data_dir / f"{symbol}_{tf}.csv"
        frame = pd.read_csv(path)
        closes = pd.to_datetime(frame["timestamp"], utc=True) + pd.Timedelta(hours=hours)
        late = (closes > after + pd.Timedelta(hours=1)).to_numpy()
        factor = rng.uniform(0.6, 1.6, size=int(late.sum()))
        for column in ("open", "high", "low", "close"):
            frame.loc[late, column] = frame.loc[late, column] * factor
        frame.to_csv(path, index=False)


def test_future_prices_change_no_train_feature_and_no_normalisation_statistic(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    strategy = _strategy()
    original = prepare_dataset(strategy, sample_data_dir)
    copy = tmp_path / "data"
    shutil.copytree(sample_data_dir, copy)
    for symbol in ("AAPL", "MSFT"):
        train = next(r for r in original.splits if r.symbol == symbol and r.part == "train")
        _perturb_after(copy, symbol, train.last_bar)
    changed = prepare_dataset(strategy, copy)
    assert original.normalization is not None and changed.normalization is not None
    assert np.array_equal(original.normalization.mean, changed.normalization.mean)
    assert np.array_equal(original.normalization.std, changed.normalization.std)
    assert np.array_equal(gather_windows(original, "train"), gather_windows(changed, "train"))
    assert not np.array_equal(gather_windows(original, "test"), gather_windows(changed, "test"))


def test_normalisation_is_fitted_on_the_rows_of_train_windows_only(sample_data_dir: Path) -> None:
    raw = prepare_dataset(
        _strategy(model={"features": {"lookback_periods": 4, "scale_features": False}}),
        sample_data_dir,
    )
    scaled = prepare_dataset(_strategy(), sample_data_dir)
    assert raw.normalization is None and scaled.normalization is not None
    rows, start = [], 0
    for part in (r for r in raw.splits if r.part == "train"):
        windows = gather_windows(raw, "train")[start : start + part.samples]
        rows += [windows[0, :-1], windows[:, -1]]  # each train feature row once
        start += part.samples
    expected = NormalizationStats.fit(np.concatenate(rows))
    assert np.allclose(scaled.normalization.mean, expected.mean, rtol=1e-5, atol=1e-6)
    assert np.allclose(scaled.normalization.std, expected.std, rtol=1e-5, atol=1e-6)
    raw_test = gather_windows(raw, "test")
    with_test = NormalizationStats.fit(np.concatenate([*rows, raw_test[:, -1]]))
    assert not np.allclose(scaled.normalization.mean, with_test.mean, rtol=1e-3)
    assert np.allclose(gather_windows(scaled, "test"), scaled.normalization.apply(raw_test))


def test_normalization_stats_round_trip_and_constant_features_get_std_one() -> None:
    rows = np.array([[1.0, 5.0], [3.0, 5.0]])
    stats = NormalizationStats.fit(rows)
    assert stats.std.tolist() == [1.0, 1.0] and stats.mean.tolist() == [2.0, 5.0]
    restored = NormalizationStats.from_dict(stats.to_dict())
    assert np.array_equal(restored.mean, stats.mean) and np.array_equal(restored.std, stats.std)
    applied = stats.apply(np.array([[[3.0, 5.0]]]))
    assert applied.dtype == np.float32 and applied.tolist() == [[[1.0, 0.0]]]


def test_too_little_data_says_how_many_bars_are_needed(tmp_path: Path) -> None:
    write_sample_data(tmp_path, symbols=("AAPL",), timeframes=("1h",), bars=60)
    strategy = _strategy(
        training_data={"symbols": {"list": ["AAPL"]}, "timeframes": {"list": ["1h"]}}
    )
    with pytest.raises(DataValidationError) as caught:
        prepare_dataset(strategy, tmp_path)
    message = str(caught.value)
    assert "60 bars present" in message and "needed" in message


def test_missing_data_file_names_the_expected_path(tmp_path: Path) -> None:
    with pytest.raises(Exception) as caught:
        prepare_dataset(_strategy(), tmp_path)
    assert str(tmp_path / "AAPL_1h.csv") in str(caught.value)


def _prepare_example(path: Path, data_dir: Path) -> PreparedDataset:
    return prepare_dataset(load_strategy(path), data_dir)


def test_all_example_strategies_load_and_prepare_on_sample_data(
    strategies_dir: Path, sample_data_dir: Path
) -> None:
    paths = sorted(strategies_dir.glob("*.yaml"))
    assert "momentum_mlp.yaml" in [p.name for p in paths] and len(paths) >= 3
    for path in paths:
        data = _prepare_example(path, sample_data_dir)
        assert min(len(data.y_train), len(data.y_val), len(data.y_test)) >= 100, path.name
        # every class occurs in training, so the examples are real 3-class problems
        assert set(np.unique(data.y_train)) == {0, 1, 2}, path.name


def test_multi_symbol_parts_are_each_symbols_own_parts_in_symbol_order(
    sample_data_dir: Path,
) -> None:
    model = {"features": {"lookback_periods": 4, "scale_features": False}}

    def prepared(symbols: list[str]) -> PreparedDataset:
        data = {"symbols": {"list": symbols}, "timeframes": {"list": ["1h", "4h"]}}
        return prepare_dataset(_strategy(training_data=data, model=model), sample_data_dir)

    both, aapl, msft = prepared(["AAPL", "MSFT"]), prepared(["AAPL"]), prepared(["MSFT"])
    for part in ("train", "val", "test"):
        expected_x = np.concatenate([gather_windows(aapl, part), gather_windows(msft, part)])
        expected_y = np.concatenate([getattr(aapl, f"y_{part}"), getattr(msft, f"y_{part}")])
        assert np.array_equal(gather_windows(both, part), expected_x)
        assert np.array_equal(getattr(both, f"y_{part}"), expected_y)
