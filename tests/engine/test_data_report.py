"""The data report: repairs and drops with reasons, missing bars, unadjusted splits, close used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_engine.data import load_ohlcv_with_report
from training_engine.data_report import data_report_lines, file_report
from training_engine.dataset import prepare_dataset
from training_engine.strategy import load_strategy

SPLIT_DAY = "2005-02-28"
REMOVED_DAYS = ("2005-01-12", "2005-03-15", "2005-03-16")


def _equity_file(path: Path, with_adjusted: bool) -> None:
    """Yahoo-style daily bars on weekdays: a 2:1 split, three missing days, two bad rows."""
    days = pd.bdate_range("2005-01-03", "2005-04-29")
    rng = np.random.default_rng(4)
    adjusted = 40.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    split_factor = np.where(days < pd.Timestamp(SPLIT_DAY), 2.0, 1.0)
    close = adjusted * split_factor  # the unadjusted prices halve on the split day
    open_ = np.concatenate(([close[0]], close[:-1] / split_factor[:-1] * split_factor[1:]))
    frame = pd.DataFrame(
        {
            "Date": days.strftime("%Y-%m-%d"),
            "Open": open_,
            "High": np.maximum(open_, close) * 1.01,
            "Low": np.minimum(open_, close) * 0.99,
            "Close": close,
            "Adj Close": adjusted,
            "Volume": 1_000_000,
        }
    )
    frame = frame[~frame["Date"].isin(REMOVED_DAYS)]
    frame.loc[frame.index[5], "Close"] = np.nan  # dropped: NaN price
    frame = pd.concat([frame, frame.iloc[[10]]])  # a duplicate row
    if not with_adjusted:
        frame = frame.drop(columns=["Adj Close"])
    frame.to_csv(path, index=False)


def test_an_unadjusted_file_shows_its_split_missing_days_and_dropped_rows(tmp_path: Path) -> None:
    _equity_file(tmp_path / "AAPL_1d.csv", with_adjusted=False)
    frame, quality = load_ohlcv_with_report(tmp_path, "AAPL", "1d")
    report = file_report("AAPL", "1d", frame, quality)
    assert report["close_used"] == "close"
    assert [(s["bar"][:10], s["ratio"]) for s in report["probable_splits"]] == [(SPLIT_DAY, "2:1")]
    assert report["calendar"] == "weekdays"
    # The three removed days and the day of the NaN close; weekends are not missing.
    assert report["missing_bars"] == 4
    assert report["dropped"] == {"NaN prices": 1, "duplicate timestamps (the last kept)": 1}
    assert report["rows_read"] == report["rows_kept"] + report["rows_dropped"]
    assert report["repaired"] == {"out-of-order timestamps sorted": 1}
    lines = "\n".join(data_report_lines([report]))
    assert f"probable unadjusted splits: {SPLIT_DAY} 2:1" in lines
    assert "missing bars 4 (weekdays calendar)" in lines


def test_an_adjusted_close_column_is_used_and_the_split_disappears(tmp_path: Path) -> None:
    _equity_file(tmp_path / "AAPL_1d.csv", with_adjusted=True)
    frame, quality = load_ohlcv_with_report(tmp_path, "AAPL", "1d")
    report = file_report("AAPL", "1d", frame, quality)
    assert report["close_used"] == "Adj Close"
    assert report["probable_splits"] == []
    before, after = frame.loc[:"2005-02-25"], frame.loc[SPLIT_DAY:]
    assert after["open"].iloc[0] / before["close"].iloc[-1] == pytest.approx(1.0, abs=0.05)
    assert (frame["high"] >= frame["close"]).all() and (frame["low"] <= frame["open"]).all()


def test_fx_hours_skip_weekends_and_crypto_hours_do_not(tmp_path: Path) -> None:
    hours = pd.date_range("2018-03-05", "2018-03-25", freq="1h", tz="UTC")
    weekdays = hours[hours.dayofweek < 5].delete([30, 31, 32])  # a three-hour hole
    for symbol, stamps in (("EURUSD", weekdays), ("BTCUSD", hours)):
        pd.DataFrame(
            {"timestamp": stamps, "open": 1.2, "high": 1.3, "low": 1.1, "close": 1.2, "volume": 1}
        ).to_csv(tmp_path / f"{symbol}_1h.csv", index=False)
    fx = file_report("EURUSD", "1h", *load_ohlcv_with_report(tmp_path, "EURUSD", "1h"))
    crypto = file_report("BTCUSD", "1h", *load_ohlcv_with_report(tmp_path, "BTCUSD", "1h"))
    assert (fx["calendar"], fx["missing_bars"]) == ("weekdays", 3)
    assert fx["largest_gaps"][0]["missing"] == 3
    assert (crypto["calendar"], crypto["missing_bars"]) == ("every day", 0)


def test_every_training_carries_a_report_per_file(
    sample_data_dir: Path, strategies_dir: Path
) -> None:
    strategy = load_strategy(strategies_dir / "multi_timeframe_mlp.yaml")
    data = prepare_dataset(strategy, sample_data_dir)
    files = [(item["symbol"], item["timeframe"]) for item in data.data_report]
    assert files == [(s, tf) for s in strategy.symbols for tf in strategy.timeframes]
    assert all(item["close_used"] == "close" for item in data.data_report)
