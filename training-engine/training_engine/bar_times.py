"""When a bar opens and closes, whatever its file stamps and however long its day.

Inside the engine every bar is indexed by its OPEN time in UTC. A data source declares
(``training_data.bar_timestamp``, ``training_data.timezone``) whether its stamps are open
or close times and in which timezone naive stamps are written.

A bar's close:

- intraday: ``open + timeframe``;
- daily or longer: the next bar's open when that comes within a day-length and an hour
  (so a 23- or 25-hour day around a DST change closes when the next day opens), and
  otherwise (before a weekend or a holiday, and for the last bar) the same wall-clock time
  one period later in the declared timezone, which is also right across DST changes.

Monthly bars (a ``DateOffset`` step) close one calendar month later, in local time.
Files stamped at the close are moved to open times the same way, backwards.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BAR_TIMESTAMPS = ("open", "close")
DAY = pd.Timedelta(days=1)
_DST_SLACK = pd.Timedelta(hours=1)


# A bar's length: a fixed span, or calendar months (``timeframe_delta`` of ``1M``).
Step = pd.Timedelta | pd.DateOffset


def _calendar_offset(step: Step) -> pd.DateOffset | None:
    """The wall-clock offset that stands for a bar length of a day or more."""
    if isinstance(step, pd.DateOffset):
        return step
    return None if step < DAY else pd.DateOffset(days=step.days)


def _shift_local(index: pd.DatetimeIndex, offset: pd.DateOffset, timezone: str) -> pd.DatetimeIndex:
    """``index`` (UTC) moved by ``offset`` of wall-clock time in ``timezone``, back in UTC."""
    local = index.tz_convert(timezone)
    moved = (
        (local + offset)
        .tz_localize(None)
        .tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    )
    return pd.DatetimeIndex(moved).tz_convert("UTC")


def bar_close_times(
    open_times: pd.DatetimeIndex, step: Step, timezone: str = "UTC"
) -> pd.DatetimeIndex:
    """The close of each bar of length ``step`` whose open times (UTC, sorted) are given."""
    return _other_end(pd.DatetimeIndex(open_times), step, timezone, forward=True)


def open_times_from_closes(
    close_times: pd.DatetimeIndex, step: Step, timezone: str = "UTC"
) -> pd.DatetimeIndex:
    """The open of each bar stamped at its close (UTC, sorted): the mirror of the above."""
    return _other_end(pd.DatetimeIndex(close_times), step, timezone, forward=False)


def _other_end(
    index: pd.DatetimeIndex, step: Step, timezone: str, *, forward: bool
) -> pd.DatetimeIndex:
    """Closes from opens (``forward``) or opens from closes."""
    sign = 1 if forward else -1
    offset = _calendar_offset(step)
    if offset is None:
        return index + sign * step
    calendar = _shift_local(index, offset if forward else -offset, timezone)
    if isinstance(step, pd.DateOffset):  # months: the calendar alone says when they end
        return pd.DatetimeIndex(calendar.where(calendar.notna(), index + sign * step))
    none = pd.DatetimeIndex([pd.NaT], tz="UTC")
    # The neighbouring bar: the next one's open for a close, the previous one's close.
    neighbour = pd.DatetimeIndex(index[1:].append(none) if forward else none.append(index[:-1]))
    adjacent = np.asarray(sign * (neighbour - index) <= step + _DST_SLACK)  # NaT: False
    ends = pd.DatetimeIndex(calendar.where(~adjacent, neighbour))
    return pd.DatetimeIndex(ends.where(ends.notna(), index + sign * step))
