"""Generated sample data: deterministic, consistent across timeframes, loadable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_engine.data import load_ohlcv
from training_engine.sample_data import write_sample_data


def test_writes_one_file_per_symbol_and_timeframe(sample_data_dir: Path) -> None:
    names = sorted(p.name for p in sample_data_dir.iterdir())
    expected = sorted(
        f"{s}_{t}.csv" for s in ("AAPL", "MSFT", "EURUSD") for t in ("1h", "4h", "1d")
    )
    # The fixture adds the context series (write_context_sample_data).
    context = ["DGS10.csv", "DGS2.csv", "GBPUSD_1h.csv", "cot_EUR.csv"]
    assert names == sorted(expected + context)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    first = write_sample_data(tmp_path / "a", symbols=("AAPL",), timeframes=("1h",), bars=300)
    second = write_sample_data(tmp_path / "b", symbols=("AAPL",), timeframes=("1h",), bars=300)
    other = write_sample_data(
        tmp_path / "c", symbols=("AAPL",), timeframes=("1h",), bars=300, seed=8
    )
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[0].read_bytes() != other[0].read_bytes()


def test_higher_timeframes_aggregate_the_hourly_bars(sample_data_dir: Path) -> None:
    hourly = load_ohlcv(sample_data_dir, "MSFT", "1h")
    four = load_ohlcv(sample_data_dir, "MSFT", "4h")
    daily = load_ohlcv(sample_data_dir, "MSFT", "1d")
    assert len(four) == 750 and len(daily) == 125
    block = hourly.iloc[8:12]
    bar = four.iloc[2]
    assert four.index[2] == hourly.index[8]
    assert bar["open"] == block["open"].iloc[0] and bar["close"] == block["close"].iloc[-1]
    assert bar["high"] == block["high"].max() and bar["low"] == block["low"].min()
    assert bar["volume"] == pytest.approx(block["volume"].sum())


def test_prices_are_valid_and_at_different_levels(sample_data_dir: Path) -> None:
    levels = {}
    for symbol in ("AAPL", "MSFT", "EURUSD"):
        frame = load_ohlcv(sample_data_dir, symbol, "1h")
        assert (frame[["open", "high", "low", "close"]] > 0).all().all()
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        levels[symbol] = frame["close"].iloc[0]
    assert levels["MSFT"] > levels["AAPL"] > 10 * levels["EURUSD"]


def test_parquet_output_loads_like_csv(tmp_path: Path) -> None:
    write_sample_data(tmp_path / "csv", symbols=("AAPL",), timeframes=("4h",), bars=200)
    write_sample_data(
        tmp_path / "pq", symbols=("AAPL",), timeframes=("4h",), bars=200, fmt="parquet"
    )
    from_csv = load_ohlcv(tmp_path / "csv", "AAPL", "4h")
    from_parquet = load_ohlcv(tmp_path / "pq", "AAPL", "4h")
    assert np.allclose(from_csv.to_numpy(), from_parquet.to_numpy(), rtol=1e-6)
    assert from_csv.index.equals(from_parquet.index)


def test_planted_momentum_makes_past_returns_predict_future_ones(sample_data_dir: Path) -> None:
    close = load_ohlcv(sample_data_dir, "AAPL", "1h")["close"].to_numpy()
    past = np.log(close[24:-12] / close[:-36])
    future = np.log(close[36:] / close[24:-12])
    assert np.corrcoef(past, future)[0, 1] > 0.2


def test_bad_format_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt"):
        write_sample_data(tmp_path, fmt="xlsx")
