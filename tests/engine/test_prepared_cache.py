"""The prepared-data cache: keyed by every input, never stale, bounded by bytes."""

from __future__ import annotations

import os
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from training_engine.dataset import PreparedDataset, prepare_dataset
from training_engine.prepared_cache import PreparedDataCache, dataset_bytes, dataset_key
from training_engine.sample_data import write_sample_data
from training_engine.strategy import StrategyConfig, parse_strategy, with_overrides


def _strategy(**overrides: object) -> StrategyConfig:
    data: dict[str, object] = {
        "name": "cached",
        "training_data": {"symbols": ["AAPL"], "timeframes": ["1h"]},
        "indicators": [{"name": "rsi", "period": 14}],
        "model": {"features": {"lookback_periods": 4}},
    }
    data.update(overrides)
    return parse_strategy(data)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Sample data this test may change."""
    folder = tmp_path / "data"
    write_sample_data(folder, symbols=("AAPL",), timeframes=("1h",), bars=600)
    return folder


def _assert_equal_datasets(left: PreparedDataset, right: PreparedDataset) -> None:
    for field in fields(left):
        a, b = getattr(left, field.name), getattr(right, field.name)
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b), field.name
            assert a.dtype == b.dtype, field.name


def test_the_same_inputs_are_prepared_once_and_served_the_same_arrays(data_dir: Path) -> None:
    cache = PreparedDataCache(max_bytes=64 * 1024 * 1024)
    strategy = _strategy()
    calls: list[int] = []

    def prepare() -> PreparedDataset:
        calls.append(1)
        return prepare_dataset(strategy, data_dir)

    first = cache.prepared(strategy, data_dir, None, None, prepare)
    second = cache.prepared(strategy, data_dir, None, None, prepare)

    assert (first.hit, second.hit, len(calls)) == (False, True, 1)
    assert second.data is first.data
    _assert_equal_datasets(second.data, prepare_dataset(strategy, data_dir))
    assert cache.held_bytes == dataset_bytes(first.data) > 0


def test_training_settings_model_and_name_share_one_preparation(data_dir: Path) -> None:
    strategy = _strategy()
    sweep = with_overrides(strategy, training={"learning_rate": 0.05, "epochs": 9})
    other_model = _strategy(
        name="other", model={"features": {"lookback_periods": 4}, "type": "lstm"}
    )

    key = dataset_key(strategy, data_dir, None, None)

    assert dataset_key(sweep, data_dir, None, None) == key
    assert dataset_key(other_model, data_dir, None, None) == key


def test_features_labels_split_and_dates_each_change_the_key(data_dir: Path) -> None:
    key = dataset_key(_strategy(), data_dir, None, None)
    others = [
        dataset_key(_strategy(indicators=[{"name": "roc", "period": 10}]), data_dir, None, None),
        dataset_key(_strategy(model={"features": {"lookback_periods": 6}}), data_dir, None, None),
        dataset_key(
            _strategy(training={"labels": {"source": "zigzag", "zigzag_threshold": 0.02}}),
            data_dir,
            None,
            None,
        ),
        dataset_key(
            _strategy(training={"data_split": {"train": 0.7, "validation": 0.15, "test": 0.15}}),
            data_dir,
            None,
            None,
        ),
        dataset_key(_strategy(), data_dir, "2024-01-10", None),
    ]

    assert key not in others
    assert len(set(others)) == len(others)


def test_a_file_changed_with_its_size_and_times_kept_changes_the_key(data_dir: Path) -> None:
    strategy = _strategy()
    path = data_dir / "AAPL_1h.csv"
    key = dataset_key(strategy, data_dir, None, None)
    before = path.stat()
    text = path.read_text()
    last_digit = max(i for i, ch in enumerate(text) if ch.isdigit() and ch != "9")
    # One price digit up: same size; then the old times put back.
    path.write_text(text[:last_digit] + str(int(text[last_digit]) + 1) + text[last_digit + 1 :])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert path.stat().st_size == before.st_size
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert dataset_key(strategy, data_dir, None, None) != key


def test_a_file_appearing_beside_the_one_read_changes_the_key(data_dir: Path) -> None:
    strategy = _strategy()
    key = dataset_key(strategy, data_dir, None, None)
    # A parquet file of the same name is a candidate too (read when the CSV goes).
    shutil.copy(data_dir / "AAPL_1h.csv", data_dir / "AAPL_1h.parquet")

    assert dataset_key(strategy, data_dir, None, None) != key


def test_a_changed_file_is_prepared_again_never_served_the_old_arrays(data_dir: Path) -> None:
    cache = PreparedDataCache(max_bytes=64 * 1024 * 1024)
    strategy = _strategy()
    first = cache.prepared(
        strategy, data_dir, None, None, lambda: prepare_dataset(strategy, data_dir)
    )
    write_sample_data(data_dir, symbols=("AAPL",), timeframes=("1h",), bars=500)

    second = cache.prepared(
        strategy, data_dir, None, None, lambda: prepare_dataset(strategy, data_dir)
    )

    assert not second.hit
    assert len(second.data.y_train) < len(first.data.y_train)
    _assert_equal_datasets(second.data, prepare_dataset(strategy, data_dir))


def test_a_file_changed_while_it_is_prepared_is_not_kept(data_dir: Path) -> None:
    cache = PreparedDataCache(max_bytes=64 * 1024 * 1024)
    strategy = _strategy()

    def prepare_while_the_file_changes() -> PreparedDataset:
        data = prepare_dataset(strategy, data_dir)
        write_sample_data(data_dir, symbols=("AAPL",), timeframes=("1h",), bars=500)
        return data

    cache.prepared(strategy, data_dir, None, None, prepare_while_the_file_changes)

    assert len(cache) == 0
    again = cache.prepared(
        strategy, data_dir, None, None, lambda: prepare_dataset(strategy, data_dir)
    )
    assert not again.hit


def test_least_recently_used_datasets_go_first_and_oversized_ones_are_not_kept(
    data_dir: Path,
) -> None:
    strategies = [_strategy(indicators=[{"name": "rsi", "period": p}]) for p in (10, 12, 14)]
    size = dataset_bytes(prepare_dataset(strategies[0], data_dir))
    cache = PreparedDataCache(max_bytes=2 * size + size // 2)

    def prepared(strategy: StrategyConfig) -> bool:
        return cache.prepared(
            strategy, data_dir, None, None, lambda: prepare_dataset(strategy, data_dir)
        ).hit

    prepared(strategies[0])
    prepared(strategies[1])
    assert prepared(strategies[0])  # now the most recently used
    prepared(strategies[2])  # over the bound: the least recently used (1) goes

    assert len(cache) == 2
    assert cache.held_bytes <= 2 * size + size // 2
    assert prepared(strategies[0]) and prepared(strategies[2])
    assert not prepared(strategies[1])
    tiny = PreparedDataCache(max_bytes=size - 1)
    assert not tiny.prepared(
        strategies[0], data_dir, None, None, lambda: prepare_dataset(strategies[0], data_dir)
    ).hit
    assert len(tiny) == 0
