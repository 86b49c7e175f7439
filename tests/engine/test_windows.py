"""Windows gathered from stored rows: equal to materialised windows, never stored as 3-D."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from training_engine.data import load_ohlcv
from training_engine.dataset import PreparedDataset, make_windows, prepare_dataset
from training_engine.features import compute_features
from training_engine.models import batched_logits, build_model
from training_engine.strategy import StrategyConfig, parse_strategy
from training_engine.windows import WindowedRows, gather_windows, to_device

from tests.engine.synthetic import make_dataset, make_strategy

PART_KEYS = {"train": "train", "validation": "val", "test": "test"}


def _strategy(lookback: int) -> StrategyConfig:
    return parse_strategy(
        {
            "name": "windows",
            "training_data": {
                "symbols": {"list": ["AAPL", "MSFT"]},
                "timeframes": {"list": ["1h", "4h"], "base_timeframe": "1h"},
            },
            "indicators": [{"name": "rsi", "period": 14}, {"name": "roc", "period": 10}],
            "model": {"features": {"lookback_periods": lookback}},
            "training": {
                "labels": {"source": "zigzag", "zigzag_threshold": 0.01, "label_lookahead": 9}
            },
        }
    )


def _materialised(
    strategy: StrategyConfig, data_dir: Path, data: PreparedDataset, part: str
) -> np.ndarray:
    """The old way: every window of each symbol's normalised rows, then the part's ones."""
    assert data.normalization is not None
    selected = []
    for symbol in strategy.symbols:
        frames = {tf: load_ohlcv(data_dir, symbol, tf) for tf in strategy.timeframes}
        features = compute_features(strategy, frames)
        rows = data.normalization.apply(features.to_numpy(dtype=np.float32))
        windows = make_windows(rows, data.lookback)
        window_ends = features.index[data.lookback - 1 :]
        split = next(s for s in data.splits if s.symbol == symbol and PART_KEYS[s.part] == part)
        chosen = (window_ends >= split.first_bar) & (window_ends <= split.last_bar)
        assert chosen.sum() == split.samples
        selected.append(windows[chosen])
    return np.concatenate(selected)


@pytest.mark.parametrize("lookback", [1, 3, 24])
def test_gathered_windows_equal_materialised_windows_of_each_symbol(
    sample_data_dir: Path, lookback: int
) -> None:
    strategy = _strategy(lookback)
    data = prepare_dataset(strategy, sample_data_dir)
    on_device = to_device(data, torch.device("cpu"))
    for part in ("train", "val", "test"):
        expected = _materialised(strategy, sample_data_dir, data, part)
        assert np.array_equal(gather_windows(data, part), expected)
        windows: WindowedRows = getattr(on_device, f"x_{part}")
        order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(lookback))
        assert np.array_equal(windows[order].numpy(), expected[order.numpy()])


def test_prepared_dataset_holds_only_2d_rows_and_1d_indices(sample_data_dir: Path) -> None:
    data = prepare_dataset(_strategy(24), sample_data_dir)
    arrays = {
        f.name: getattr(data, f.name)
        for f in dataclasses.fields(data)
        if isinstance(getattr(data, f.name), np.ndarray)
    }
    assert {name for name, a in arrays.items() if a.ndim == 2} == {"rows"}
    assert all(a.ndim == 1 for name, a in arrays.items() if name != "rows")
    samples = len(data.train_ends) + len(data.val_ends) + len(data.test_ends)
    assert samples > len(data.rows) / 2  # the windows overlap: they are not stored
    assert data.rows.nbytes < samples * data.lookback * data.n_features * 4 / 10
    on_device = to_device(data, torch.device("cpu"))
    fields = [getattr(on_device, f.name) for f in dataclasses.fields(on_device)]
    tensors = [t for t in fields if t is not None]  # w_train: None without sample weights
    stored = [
        t for w in tensors for t in ((w.rows, w.ends) if isinstance(w, WindowedRows) else (w,))
    ]
    assert all(t.ndim <= 2 for t in stored)
    assert len({t.data_ptr() for t in stored if t.ndim == 2}) == 1  # one copy of the rows


def test_batched_predictions_equal_unbatched_predictions() -> None:
    data = make_dataset(n_train=64, n_val=50, n_test=203, lookback=5)
    torch.manual_seed(0)
    model = build_model(make_strategy(model={"dropout": 0.0}).model, data.n_features, 5).eval()
    windows = to_device(data, torch.device("cpu")).x_test
    with torch.no_grad():
        unbatched = model(torch.from_numpy(gather_windows(data, "test")))
    for batch_size in (1, 7, 64, 4096):
        batched = batched_logits(model, windows, batch_size=batch_size)
        torch.testing.assert_close(batched, unbatched, rtol=1e-6, atol=1e-6)
        assert torch.equal(batched.argmax(1), unbatched.argmax(1))
