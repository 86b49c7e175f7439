"""Loading OHLCV files: formats, headers, timestamps, and the repair/reject rules."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_engine.data import load_ohlcv, load_ohlcv_with_report, repair_ohlcv
from training_engine.errors import (
    DataFileNotFoundError,
    DataValidationError,
    StrategyConfigError,
    UnsafePathError,
)


def _bars(count: int = 10) -> pd.DataFrame:
    stamps = pd.date_range("2024-01-01", periods=count, freq="1h", tz="UTC")
    close = np.linspace(100.0, 110.0, count)
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(count, 1000.0),
        }
    )


def test_load_ohlcv_returns_utc_index_and_float_columns(sample_data_dir: Path) -> None:
    frame = load_ohlcv(sample_data_dir, "AAPL", "1h")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "timestamp"
    assert str(frame.index.tz) == "UTC"
    assert len(frame) == 3000
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame.index.is_monotonic_increasing


def test_date_header_in_any_case_and_timezone_offsets_become_utc(tmp_path: Path) -> None:
    (tmp_path / "X_1h.csv").write_text(
        "Date,OPEN,High,low,Close,Volume\n"
        "2024-01-01T02:00:00+02:00,1,2,0.5,1.5,10\n"
        "2024-01-01T03:00:00+02:00,1.5,2,1,1.8,10\n"
    )
    frame = load_ohlcv(tmp_path, "X", "1h")
    assert list(frame.index) == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 01:00", tz="UTC"),
    ]
    assert frame["close"].tolist() == [1.5, 1.8]


def test_naive_timestamps_are_taken_as_utc(tmp_path: Path) -> None:
    (tmp_path / "X_1d.csv").write_text(
        "datetime,open,high,low,close,volume\n2024-03-01 00:00:00,1,2,0.5,1.5,10\n"
    )
    frame = load_ohlcv(tmp_path, "X", "1d")
    assert frame.index[0] == pd.Timestamp("2024-03-01", tz="UTC")


def test_parquet_with_epoch_milliseconds_is_read(tmp_path: Path) -> None:
    bars = _bars(3)
    bars["timestamp"] = bars["timestamp"].astype("int64") // 1_000_000
    bars.to_parquet(tmp_path / "X_1h.parquet", index=False)
    frame = load_ohlcv(tmp_path, "X", "1h")
    assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert frame.index[2] == pd.Timestamp("2024-01-01 02:00", tz="UTC")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_frame_saved_with_an_unnamed_datetime_index_is_read(tmp_path: Path, fmt: str) -> None:
    # What `frame.to_csv(path)` / `frame.to_parquet(path)` write from a DatetimeIndex.
    bars = _bars(3).set_index("timestamp").rename_axis(None)
    bars["Adj Close"] = bars["close"]  # extra columns, as in Yahoo downloads, are ignored
    if fmt == "csv":
        bars.to_csv(tmp_path / "X_1h.csv")
    else:
        bars.to_parquet(tmp_path / "X_1h.parquet")
    frame = load_ohlcv(tmp_path, "X", "1h")
    assert frame.index[2] == pd.Timestamp("2024-01-01 02:00", tz="UTC")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]


def test_missing_file_error_names_every_expected_path(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError) as caught:
        load_ohlcv(tmp_path, "NOPE", "1h")
    message = str(caught.value)
    assert str(tmp_path / "NOPE_1h.csv") in message
    assert str(tmp_path / "NOPE_1h.parquet") in message


def test_missing_file_error_lists_the_symbols_and_timeframes_the_folder_has(
    tmp_path: Path,
) -> None:
    for name in ("AAPL_1h.csv", "AAPL_1d.parquet", "EUR_USD_4h.csv", "notes.txt", "README.md"):
        (tmp_path / name).write_text("")
    with pytest.raises(DataFileNotFoundError) as caught:
        load_ohlcv(tmp_path, "MSFT", "1h")
    assert str(caught.value).endswith("; the data folder has AAPL (1d, 1h), EUR_USD (4h)")
    with pytest.raises(DataFileNotFoundError) as caught:
        load_ohlcv(tmp_path / "empty", "MSFT", "1h")
    assert "the data folder has no {SYMBOL}_{TIMEFRAME}.csv or .parquet file" in str(caught.value)


def test_path_traversal_symbol_is_rejected_before_any_file_access(tmp_path: Path) -> None:
    with pytest.raises(StrategyConfigError) as caught:
        load_ohlcv(tmp_path, "../../etc/passwd", "1h")
    assert caught.value.key == "symbol"


def test_missing_columns_are_named_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "X_1h.csv").write_text("timestamp,open,close\n2024-01-01,1,1\n")
    with pytest.raises(DataValidationError) as caught:
        load_ohlcv(tmp_path, "X", "1h")
    message = str(caught.value)
    assert "high, low, volume" in message
    assert "X_1h.csv" in message


def test_small_damage_is_repaired_and_reported_with_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bars = _bars(40)
    bars.loc[3, "close"] = np.nan  # dropped
    bars.loc[5, "low"] = -1.0  # dropped
    bars.loc[7, ["high", "low"]] = [90.0, 120.0]  # high < low: fixed
    shuffled = pd.concat([bars.iloc[10:], bars.iloc[:10], bars.iloc[[12]]])  # unsorted + duplicate
    shuffled.loc[shuffled.index[-1], "close"] = (
        bars.loc[12, "close"] + 0.25
    )  # the later duplicate must win
    with caplog.at_level(logging.WARNING, logger="training_engine.data"):
        frame, report = repair_ohlcv(shuffled, "test.csv")
    assert report.nan_prices == 1
    assert report.non_positive_prices == 1
    assert report.high_low_fixed == 1
    assert report.duplicates == 1
    assert report.unsorted >= 1
    assert report.rows_kept == 38
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.loc[bars.loc[12, "timestamp"], "close"] == bars.loc[12, "close"] + 0.25
    fixed = frame.loc[bars.loc[7, "timestamp"]]
    assert fixed["high"] == 120.0 and fixed["low"] == 90.0
    assert (frame["high"] >= frame[["open", "close", "low"]].max(axis=1)).all()
    assert "rows with NaN prices 1" in caplog.text
    assert "duplicate timestamps 1" in caplog.text


def test_heavily_damaged_data_is_rejected_with_the_damage_named() -> None:
    bars = _bars(10)
    bars.loc[0:2, "close"] = np.nan  # 30% of rows
    with pytest.raises(DataValidationError) as caught:
        repair_ohlcv(bars, "bad.csv")
    assert "bad.csv" in str(caught.value)
    assert "rows with NaN prices 3" in str(caught.value)


def test_swapped_high_and_low_columns_are_repaired_not_rejected() -> None:
    bars = _bars(10)
    swapped = bars.rename(columns={"high": "low", "low": "high"})
    frame, report = repair_ohlcv(swapped, "swapped.csv")
    assert report.high_low_fixed == 10 and report.rows_kept == 10
    assert frame["high"].tolist() == bars["high"].tolist()
    assert frame["low"].tolist() == bars["low"].tolist()


def test_a_file_with_no_usable_rows_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "X_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\nnot-a-date,1,1,1,1,1\n"
    )
    with pytest.raises(DataValidationError, match="no usable rows"):
        load_ohlcv(tmp_path, "X", "1h")


def test_date_range_is_inclusive_and_a_bare_end_date_covers_the_day(sample_data_dir: Path) -> None:
    frame = load_ohlcv(sample_data_dir, "AAPL", "1h", "2023-01-03", "2023-01-04")
    assert frame.index[0] == pd.Timestamp("2023-01-03 00:00", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2023-01-04 23:00", tz="UTC")
    assert len(frame) == 48


def test_empty_date_range_and_bad_date_are_clear_errors(sample_data_dir: Path) -> None:
    with pytest.raises(DataValidationError, match="no bars between"):
        load_ohlcv(sample_data_dir, "AAPL", "1h", "2030-01-01")
    with pytest.raises(DataValidationError, match="start_date"):
        load_ohlcv(sample_data_dir, "AAPL", "1h", "yesterday-ish")


def test_clean_file_reports_clean(sample_data_dir: Path) -> None:
    _, report = load_ohlcv_with_report(sample_data_dir, "MSFT", "4h")
    assert report.is_clean
    assert report.rows_read == report.rows_kept == 750


def test_a_row_of_the_wrong_shape_is_reported_without_its_text(tmp_path: Path) -> None:
    (tmp_path / "AAPL_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\nroot:x:0:0,private\n"
    )
    with pytest.raises(DataValidationError) as caught:
        load_ohlcv(tmp_path, "AAPL", "1h")
    assert "Expected 6 columns, got 2" in str(caught.value)
    assert "root:x" not in str(caught.value) and "private" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("AAPL_1h.parquet", b"PAR1 not parquet", "not a Parquet file"),
        ("AAPL_1h.csv", b"timestamp,open,high,low,close,volume\n\xffsecret,1,2,1,1,5\n", "UTF-8"),
        ("AAPL_1h.csv", b"", "empty file"),
    ],
)
def test_an_unreadable_file_is_reported_without_its_content(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataValidationError, match=reason) as caught:
        load_ohlcv(tmp_path, "AAPL", "1h")
    assert "secret" not in str(caught.value)


def test_a_data_file_linked_out_of_its_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "AAPL_1h.csv").symlink_to(outside)
    with pytest.raises(UnsafePathError, match=r"data file 'AAPL_1h\.csv' would lie outside"):
        load_ohlcv(data_dir, "AAPL", "1h")
