"""Bar timestamps: open or close stamps, a declared timezone, and 23- and 25-hour days."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from training_engine.bar_times import bar_close_times, open_times_from_closes
from training_engine.data import load_ohlcv_with_report
from training_engine.errors import StrategyConfigError
from training_engine.features import align_to_base
from training_engine.strategy import parse_strategy

NY = "America/New_York"
DAY = pd.Timedelta(days=1)
# 2018-03-11 has 23 hours in New York, 2018-11-04 has 25.
SHORT_DAY, LONG_DAY = "2018-03-11", "2018-11-04"


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _ny_midnights(first: str, last: str) -> pd.DatetimeIndex:
    return pd.date_range(first, last, freq="D", tz=NY).tz_convert("UTC")


@pytest.mark.parametrize(
    ("day", "opens", "closes"),
    [
        (SHORT_DAY, "2018-03-11 05:00", "2018-03-12 04:00"),
        (LONG_DAY, "2018-11-04 04:00", "2018-11-05 05:00"),
    ],
)
def test_a_new_york_daily_bar_closes_when_the_next_day_opens(
    day: str, opens: str, closes: str
) -> None:
    index = _ny_midnights("2018-03-01", "2018-11-30")
    close = bar_close_times(index, DAY, NY)
    position = index.get_loc(_utc(opens))
    assert close[position] == _utc(closes)
    # Declared or not, consecutive bars close at the next one's open.
    assert bar_close_times(index, DAY)[position] == _utc(closes)


def test_a_friday_bar_closes_at_saturday_midnight_not_at_monday_open() -> None:
    fridays_week = _ny_midnights("2018-11-05", "2018-11-12")
    weekdays = fridays_week[fridays_week.tz_convert(NY).dayofweek < 5]
    close = bar_close_times(weekdays, DAY, NY)
    friday = weekdays.get_loc(_utc("2018-11-09 05:00"))
    assert close[friday] == _utc("2018-11-10 05:00")


def test_close_stamps_become_the_open_stamps_of_the_same_bars() -> None:
    opens = _ny_midnights("2018-03-05", "2018-11-10")
    closes = bar_close_times(opens, DAY, NY)
    assert open_times_from_closes(closes, DAY, NY).equals(opens)
    hours = pd.date_range("2018-11-03", periods=50, freq="1h", tz="UTC")
    assert open_times_from_closes(hours, pd.Timedelta(hours=1)).equals(hours - pd.Timedelta("1h"))


def _daily_visible(day_stamps: pd.DatetimeIndex, hourly: pd.DatetimeIndex) -> pd.Series:
    """For each hourly bar, the daily bar (by its open) it sees, through align_to_base."""
    daily = pd.DataFrame({"opened": day_stamps.asi8.astype("float64")}, index=day_stamps)
    seen = align_to_base(daily, "1d", hourly, "1h", NY)["opened"]
    return pd.to_datetime(seen, utc=True)


@pytest.mark.parametrize(
    ("day", "first_seen_by"),
    [(SHORT_DAY, "2018-03-12 03:00"), (LONG_DAY, "2018-11-05 04:00")],
)
def test_hourly_bars_see_a_daily_bar_from_its_true_close_on_dst_days(
    day: str, first_seen_by: str
) -> None:
    days = _ny_midnights("2018-03-01", "2018-11-30")
    hourly = pd.date_range("2018-03-05", "2018-11-20", freq="1h", tz="UTC")
    seen = _daily_visible(days, hourly)
    day_open = pd.Timestamp(day, tz=NY).tz_convert("UTC")
    first = _utc(first_seen_by)
    assert seen[first] == day_open  # the hourly bar closing exactly at the daily close
    assert seen[first - pd.Timedelta("1h")] < day_open  # one hour earlier: not yet


def _write_daily(path: Path, stamps: list[str]) -> None:
    rows = [f"{s},10,11,9,10.5,100" for s in stamps]
    path.write_text("date,open,high,low,close,volume\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("bar_timestamp", ["open", "close"])
def test_files_stamped_at_open_or_close_in_new_york_load_as_the_same_utc_opens(
    tmp_path: Path, bar_timestamp: str
) -> None:
    ny_days = pd.date_range("2018-11-01", "2018-11-08", freq="D")
    shown = ny_days if bar_timestamp == "open" else ny_days + DAY
    _write_daily(tmp_path / "SPY_1d.csv", [f"{d:%Y-%m-%d}" for d in shown])
    frame, _ = load_ohlcv_with_report(
        tmp_path, "SPY", "1d", bar_timestamp=bar_timestamp, timezone=NY
    )
    expected = ny_days.tz_localize(NY).tz_convert("UTC")
    assert pd.DatetimeIndex(frame.index).equals(expected.rename("timestamp"))
    long_day = frame.index.get_loc(_utc("2018-11-04 04:00"))
    assert frame.index[long_day + 1] - frame.index[long_day] == pd.Timedelta(hours=25)


def test_naive_hours_that_occur_twice_are_dropped_and_counted(tmp_path: Path) -> None:
    hours = pd.date_range("2018-11-03 20:00", "2018-11-04 06:00", freq="1h")  # naive, NY
    rows = [f"{h:%Y-%m-%d %H:%M},10,11,9,10.5,100" for h in hours]
    (tmp_path / "SPY_1h.csv").write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows))
    frame, report = load_ohlcv_with_report(tmp_path, "SPY", "1h", timezone=NY)
    assert report.bad_timestamps == 1  # 01:00 on 2018-11-04 happened twice in New York
    assert len(frame) == len(hours) - 1


def test_the_strategy_declares_bar_timestamp_and_timezone() -> None:
    base = {"name": "tz", "indicators": [{"name": "rsi"}]}
    data = {"symbols": ["SPY"], "timeframes": ["1d"], "bar_timestamp": "Close", "timezone": NY}
    strategy = parse_strategy({**base, "training_data": data})
    assert (strategy.bar_timestamp, strategy.timezone) == ("close", NY)
    with pytest.raises(StrategyConfigError, match="unknown timezone"):
        parse_strategy({**base, "training_data": {**data, "timezone": "New_York"}})
    with pytest.raises(StrategyConfigError, match="bar_timestamp"):
        parse_strategy({**base, "training_data": {**data, "bar_timestamp": "middle"}})
