"""What the data of a training looked like: one entry per file, stored with the model.

Besides the repair counts of :class:`~training_engine.data.DataQualityReport`, each entry
holds:

- missing bars: calendar slots between the first and last bar with no bar. The calendar
  is the timeframe's, restricted to weekdays when the file has (almost) no Saturday bars
  (FX and equities), and, intraday, to the times of day the file trades at (so an
  exchange's nights are not missing). Holidays count as missing: they are few.
- probable unadjusted splits: a bar opening at about 1/2, 1/3, 2/3, 1/4, 1/5, 1/10 of the
  previous close (a split) or at 2, 3, 4 times it (a reverse split).
- which close was used: ``adj_close`` when the file has one (see ``data``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from training_engine.data import DataQualityReport, timeframe_delta

# Split ratios as (shares after, shares before): price moves by before/after.
SPLIT_RATIOS = ((2, 1), (3, 1), (3, 2), (4, 1), (5, 1), (10, 1), (1, 2), (1, 3), (1, 4))
SPLIT_TOLERANCE = 0.03  # relative distance of the jump from the exact ratio
WEEKEND_SHARE = 0.01  # fewer Saturday bars than this: a weekday calendar
MAX_LISTED = 20  # splits and gaps listed per file (the counts are always complete)

_DROPPED = (
    ("bad timestamps", "bad_timestamps"),
    ("NaN prices", "nan_prices"),
    ("prices <= 0", "non_positive_prices"),
    ("negative volume", "negative_volume"),
    ("duplicate timestamps (the last kept)", "duplicates"),
)
_REPAIRED = (
    ("out-of-order timestamps sorted", "unsorted"),
    ("NaN volume set to 0", "nan_volume"),
    ("high/low made consistent with open/close", "high_low_fixed"),
)


def file_report(
    symbol: str, timeframe: str, frame: pd.DataFrame, quality: DataQualityReport
) -> dict[str, Any]:
    """The data report of one loaded file (``frame``: the bars kept, in the date range)."""
    counts = asdict(quality)
    index = pd.DatetimeIndex(frame.index)
    return {
        "symbol": symbol,
        "timeframe": timeframe,
        "file": quality.source,
        "close_used": quality.close_column,
        "rows_read": quality.rows_read,
        "rows_kept": quality.rows_kept,
        "rows_dropped": quality.rows_dropped,
        "dropped": {label: counts[key] for label, key in _DROPPED if counts[key]},
        "repaired": {label: counts[key] for label, key in _REPAIRED if counts[key]},
        "bars_in_range": len(index),
        "first_bar": index[0].isoformat() if len(index) else None,
        "last_bar": index[-1].isoformat() if len(index) else None,
        **missing_bars(index, timeframe),
        "probable_splits": probable_splits(frame),
    }


def missing_bars(index: pd.DatetimeIndex, timeframe: str) -> dict[str, Any]:
    """Calendar slots with no bar between the first and the last bar, and the calendar used."""
    if len(index) < 2:
        return {"calendar": "unknown", "missing_bars": 0, "largest_gaps": []}
    step = timeframe_delta(timeframe)
    weekdays_only = float(np.mean(index.dayofweek == 5)) < WEEKEND_SHARE
    stamps = index
    if isinstance(step, pd.DateOffset) or step >= pd.Timedelta(days=1):
        # Daily bars may open at a local midnight that moves in UTC with DST: compare days.
        stamps = index.normalize()
        slots = pd.date_range(stamps[0], stamps[-1], freq=step)
    else:
        slots = pd.date_range(index[0], index[-1], freq=step)
        times = set(index.time)
        slots = slots[np.fromiter((t in times for t in slots.time), bool, len(slots))]
    if weekdays_only:
        slots = slots[slots.dayofweek < 5]
    missing = slots.difference(stamps)
    index = stamps
    return {
        "calendar": "weekdays" if weekdays_only else "every day",
        "missing_bars": len(missing),
        "largest_gaps": _largest_gaps(index, missing),
    }


def _largest_gaps(index: pd.DatetimeIndex, missing: pd.DatetimeIndex) -> list[dict[str, Any]]:
    """Runs of missing slots, longest first: the bar before and after, and how many."""
    if len(missing) == 0:
        return []
    before = index.searchsorted(missing) - 1
    runs: dict[int, int] = {}
    for position in before:
        runs[int(position)] = runs.get(int(position), 0) + 1
    longest = sorted(runs.items(), key=lambda item: -item[1])[:MAX_LISTED]
    return [
        {"after": index[p].isoformat(), "before": index[p + 1].isoformat(), "missing": n}
        for p, n in longest
    ]


def probable_splits(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Bars whose open jumps from the previous close by about a split ratio."""
    if len(frame) < 2:
        return []
    jump = frame["open"].to_numpy()[1:] / frame["close"].to_numpy()[:-1]
    found: list[dict[str, Any]] = []
    for after, before in SPLIT_RATIOS:
        factor = before / after
        hits = np.flatnonzero(np.abs(jump / factor - 1.0) < SPLIT_TOLERANCE)
        found += [
            {
                "bar": pd.Timestamp(frame.index[int(i) + 1]).isoformat(),
                "ratio": f"{after}:{before}",
                "open_over_previous_close": round(float(jump[i]), 4),
            }
            for i in hits
        ]
    found.sort(key=lambda item: str(item["bar"]))
    return found[:MAX_LISTED]


def data_report_lines(reports: list[dict[str, Any]]) -> list[str]:
    """Human-readable: two or three lines per file."""
    lines = ["data:"]
    for item in reports:
        lines.append(
            f"  {item['symbol']} {item['timeframe']}: {item['rows_read']} rows read, "
            f"{item['rows_dropped']} dropped, {item['bars_in_range']} bars "
            f"{item['first_bar']} .. {item['last_bar']}, close: {item['close_used']}"
        )
        problems = [f"{label} {n}" for label, n in {**item["dropped"], **item["repaired"]}.items()]
        problems.append(f"missing bars {item['missing_bars']} ({item['calendar']} calendar)")
        lines.append(f"    {', '.join(problems)}")
        splits = item["probable_splits"]
        if splits:
            listed = ", ".join(f"{s['bar'][:10]} {s['ratio']}" for s in splits[:5])
            lines.append(f"    probable unadjusted splits: {listed}")
    return lines
