"""Context data: series beside the traded symbols that indicators read (KTRDR's ``context_data``).

A strategy's ``context_data`` entries name series; an indicator with ``data_source: <id>``
runs on one of them instead of the symbol's own bars (KTRDR v3). The service never
downloads: each series is a file in the data folder, named by its symbol or id.

=========== ======================================= =============================================
provider    file(s) (``.csv``, else ``.parquet``)    source ids (``data_source``)
=========== ======================================= =============================================
ib          ``{SYMBOL}_{TIMEFRAME}`` (OHLCV, as the  ``{SYMBOL}``
            traded symbols' files; timeframe 1h)
fred        ``{SERIES}`` per series id: a date and   ``fred_{SERIES}``; with two or more series
            the value (FRED's own CSV download       also ``yield_spread_{A}_{B}`` = A - B on
            works: ``observation_date,DGS2``)        their common dates
cftc_cot    ``cot_{REPORT}``: the report date and    ``cot_{REPORT}_net_pos`` (leveraged funds'
            ``net_position``, or the TFF report's    long - short), ``cot_{REPORT}_net_pct`` (its
            leveraged-funds long and short columns   rank among the last 52 reports, 0-100)
=========== ======================================= =============================================

**Alignment (KTRDR's ``forward_fill``, without look-ahead).** Each row of a series
becomes known at a time: an instrument's bar at its close; a FRED observation when its
period is over (the date of the next observation; the last one its date plus the series'
usual spacing); a COT report (a Tuesday's positions) at its release, the Friday after at
15:30 New York time; a ``published`` column, when the file has one, overrides these. A bar
of the traded symbol sees, at its close, the latest row known by then, carried forward
until the next is known (KTRDR forward-fills by the stamps themselves, so its hourly bars
read a day's yield at that day's midnight). The indicator then runs on that aligned
series, as KTRDR computes it: a series changing after bar t changes no feature up to t.

An external series (fred, cftc_cot) has one value per row: as bars, open, high, low and
close are that value and volume is 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from training_engine.bar_times import bar_close_times
from training_engine.data import (
    DATA_SUFFIXES,
    TIMESTAMP_ALIASES,
    UNNAMED_INDEX_COLUMNS,
    load_ohlcv_file,
    parse_timestamps,
    read_table,
    timeframe_delta,
)
from training_engine.data_report import file_report
from training_engine.errors import DataFileNotFoundError, DataValidationError
from training_engine.paths import path_inside
from training_engine.strategy import StrategyConfig
from training_engine.strategy.config import ContextSource

# KTRDR's CFTC contract names for its currency codes (a TFF report file holds every market).
COT_CONTRACTS = {
    "EUR": "EURO FX",
    "GBP": "BRITISH POUND",
    "JPY": "JAPANESE YEN",
    "CHF": "SWISS FRANC",
    "AUD": "AUSTRALIAN DOLLAR",
    "NZD": "NEW ZEALAND DOLLAR",
    "CAD": "CANADIAN DOLLAR",
    "MXN": "MEXICAN PESO",
}
COT_PERCENTILE_WEEKS = 52
# CFTC publishes Tuesday's positions on Friday at 15:30 Eastern time.
_COT_RELEASE = pd.Timedelta(days=3, hours=15, minutes=30)
_COT_RELEASE_ZONE = "America/New_York"
_DATE_ALIASES = (
    *TIMESTAMP_ALIASES,
    "observation_date",
    "report_date_as_yyyy-mm-dd",
    "as of date in form yyyy-mm-dd",
)
_MARKET_COLUMNS = ("market_and_exchange_names", "market and exchange names")
_PUBLISHED = "published"


@dataclass(frozen=True)
class ContextSeries:
    """One source id's rows (OHLCV columns) and when each row became known (UTC ns)."""

    source_id: str
    bars: pd.DataFrame
    known_at: np.ndarray  # int64 ns, non-decreasing
    report: dict[str, Any] | None = None  # the data report of an instrument's file


@dataclass(frozen=True)
class _ContextFile:
    """A file one entry reads: what it is (for messages) and where it may be."""

    entry: ContextSource
    what: str
    name: str  # the file name without its suffix
    series: str | None = None  # fred: the series id it holds


def _files(entry: ContextSource, index: int) -> list[_ContextFile]:
    at = f"context_data[{index}]"
    if entry.provider == "ib":
        what = f"{entry.symbol} {entry.timeframe} ({at})"
        return [_ContextFile(entry, what, f"{entry.symbol}_{entry.timeframe}")]
    if entry.provider == "fred":
        return [
            _ContextFile(entry, f"FRED series {series} ({at})", series, series)
            for series in entry.series
        ]
    return [_ContextFile(entry, f"CFTC COT report {entry.report} ({at})", f"cot_{entry.report}")]


def _candidates(data_dir: Path, file: _ContextFile) -> list[Path]:
    """Where the file may be, in the order tried; refused when a name leads out of the folder."""
    return [
        path_inside(data_dir, f"{file.name}{suffix}", what="context_data file")
        for suffix in DATA_SUFFIXES
    ]


def _find(data_dir: Path, file: _ContextFile) -> Path:
    """The first existing candidate; refused when a name would lead out of the data folder."""
    candidates = _candidates(data_dir, file)
    for path in candidates:
        if path.is_file():
            return path
    raise DataFileNotFoundError(file.what, "", candidates)


def _entry_files(strategy: StrategyConfig) -> Iterator[_ContextFile]:
    used = {spec.data_source for spec in strategy.indicators if spec.data_source}
    for index, entry in enumerate(strategy.context_data):
        if used.intersection(entry.source_ids):  # KTRDR warns about the others; nothing reads them
            yield from _files(entry, index)


def check_context_files(data_dir: Path, strategy: StrategyConfig) -> None:
    """Every file the strategy's context data reads exists (checked when a job is submitted).

    Raises:
        DataFileNotFoundError: naming the files looked for.
        UnsafePathError: a symbol or id would name a file outside the data folder.
    """
    for file in _entry_files(strategy):
        _find(Path(data_dir), file)


def context_file_candidates(strategy: StrategyConfig, data_dir: Path) -> list[Path]:
    """Every path the strategy's context data may be read from, found or not.

    Raises:
        UnsafePathError: a symbol or id would name a file outside the data folder.
    """
    return [path for file in _entry_files(strategy) for path in _candidates(Path(data_dir), file)]


def load_context(strategy: StrategyConfig, data_dir: Path) -> dict[str, ContextSeries]:
    """Every series the strategy's indicators read, by source id (all of each file's rows).

    Raises:
        DataFileNotFoundError: a file is missing, naming the paths looked for.
        DataValidationError: a file cannot be used.
        UnsafePathError: a symbol or id would name a file outside the data folder.
    """
    loaded: dict[str, ContextSeries] = {}
    fred: dict[tuple[str, ...], dict[str, ContextSeries]] = {}
    for file in _entry_files(strategy):
        path = _find(Path(data_dir), file)
        entry = file.entry
        if entry.provider == "ib":
            series = _instrument(entry, path, strategy)
            loaded[series.source_id] = series
        elif entry.provider == "fred" and file.series is not None:
            series = _fred_series(file.series, path, strategy.timezone)
            fred.setdefault(entry.series, {})[file.series] = series
            loaded[series.source_id] = series
        else:
            loaded.update(_cot(str(entry.report), path))
    for names, by_id in fred.items():
        if len(names) >= 2:
            spread = _spread(by_id[names[0]], by_id[names[1]], names[0], names[1])
            loaded[spread.source_id] = spread
    return loaded


def context_reports(context: Mapping[str, ContextSeries]) -> tuple[dict[str, Any], ...]:
    """The data reports of the instruments' files (external series have none)."""
    return tuple(series.report for series in context.values() if series.report is not None)


def aligned_sources(
    context: Mapping[str, ContextSeries] | None,
    strategy: StrategyConfig,
    bars: pd.DatetimeIndex,
    timeframe: str,
) -> dict[str, pd.DataFrame]:
    """Each series the strategy's indicators read, aligned onto ``bars`` (``align_context``)."""
    used = {spec.data_source for spec in strategy.indicators if spec.data_source}
    return {
        source_id: align_context(series, bars, timeframe, strategy.timezone)
        for source_id, series in (context or {}).items()
        if source_id in used
    }


def align_context(
    series: ContextSeries, bars: pd.DatetimeIndex, timeframe: str, timezone: str = "UTC"
) -> pd.DataFrame:
    """``series`` on ``bars`` (open times of ``timeframe`` bars): at each bar's close, the
    latest row known by then, carried forward; NaN before the first."""
    closes = bar_close_times(pd.DatetimeIndex(bars), timeframe_delta(timeframe), timezone)
    positions = np.searchsorted(series.known_at, closes.asi8, side="right") - 1
    values = series.bars.to_numpy(dtype=np.float64)[np.maximum(positions, 0)]
    values[positions < 0] = np.nan
    return pd.DataFrame(values, index=bars, columns=series.bars.columns)


# ---------------------------------------------------------------- the providers


def _instrument(entry: ContextSource, path: Path, strategy: StrategyConfig) -> ContextSeries:
    timeframe = str(entry.timeframe)
    frame, quality = load_ohlcv_file(path, timeframe, strategy.bar_timestamp, strategy.timezone)
    index = pd.DatetimeIndex(frame.index)
    known = bar_close_times(index, timeframe_delta(timeframe), strategy.timezone).asi8
    report = file_report(str(entry.symbol), timeframe, frame, quality)
    return ContextSeries(str(entry.symbol), frame, np.maximum.accumulate(known), report)


def _fred_series(series_id: str, path: Path, timezone: str) -> ContextSeries:
    table = _dated_rows(path, timezone)
    values = _numbers(table, (series_id.lower(), "value", "close"), path)
    stamps = pd.DatetimeIndex(table.index)
    # An observation covers its period, which ends when the next one begins.
    ends = stamps[1:].asi8
    spacing = int(np.median(np.diff(stamps.asi8))) if len(stamps) > 1 else pd.Timedelta("1D").value
    known = np.concatenate([ends, stamps[-1:].asi8 + spacing])
    return _external(f"fred_{series_id}", values.ffill(), _published(table, known))


def _cot(report: str, path: Path) -> dict[str, ContextSeries]:
    # Report dates are calendar dates: read as such, whatever the strategy's timezone.
    table = _dated_rows(path, "UTC", market=COT_CONTRACTS.get(report, report))
    by_name = {str(c).strip().lower(): c for c in table.columns}
    if "net_position" in by_name:
        net = _numbers(table, ("net_position",), path)
    else:
        long_, short = (_leveraged(by_name, side, path) for side in ("long", "short"))
        net = pd.to_numeric(table[long_], errors="coerce") - pd.to_numeric(
            table[short], errors="coerce"
        )
    net = net.dropna()
    if net.empty:
        raise DataValidationError(f"{path}: no net position in any row")
    dates = pd.DatetimeIndex(net.index).tz_localize(None).normalize()
    release = (dates + _COT_RELEASE).tz_localize(_COT_RELEASE_ZONE, nonexistent="shift_forward")
    known = _published(table.loc[net.index], pd.DatetimeIndex(release).tz_convert("UTC").asi8)
    return {
        f"cot_{report}_net_pos": _external(f"cot_{report}_net_pos", net, known),
        f"cot_{report}_net_pct": _external(
            f"cot_{report}_net_pct", _percentile_rank(net, COT_PERCENTILE_WEEKS), known
        ),
    }


def _spread(a: ContextSeries, b: ContextSeries, name_a: str, name_b: str) -> ContextSeries:
    """a - b on their common stamps, known once both are (KTRDR's yield spread)."""
    stamps_a = np.asarray(pd.DatetimeIndex(a.bars.index).asi8)
    stamps_b = np.asarray(pd.DatetimeIndex(b.bars.index).asi8)
    common, in_a, in_b = np.intersect1d(stamps_a, stamps_b, assume_unique=True, return_indices=True)
    if len(common) == 0:
        raise DataValidationError(f"FRED series {name_a} and {name_b} share no date")
    values = a.bars["close"].to_numpy()[in_a] - b.bars["close"].to_numpy()[in_b]
    known = np.maximum(a.known_at[in_a], b.known_at[in_b])
    index = pd.DatetimeIndex(common, tz="UTC")
    return _external(f"yield_spread_{name_a}_{name_b}", pd.Series(values, index=index), known)


# ---------------------------------------------------------------- reading external series


def _dated_rows(path: Path, timezone: str, market: str | None = None) -> pd.DataFrame:
    """The file's rows indexed by their date (UTC), sorted, one per date (the last wins);
    rows of other markets left out where the file names markets."""
    raw = read_table(path, "a dated series")
    by_name = {str(c).strip().lower(): c for c in raw.columns}
    if market is not None:
        column = next((by_name[n] for n in _MARKET_COLUMNS if n in by_name), None)
        if column is not None:
            raw = raw.loc[raw[column].astype(str).str.contains(market, case=False, regex=False)]
    date = next((by_name[n] for n in _DATE_ALIASES if n in by_name), None)
    first = str(raw.columns[0]).strip().lower() if len(raw.columns) else None
    if date is None and first in UNNAMED_INDEX_COLUMNS:
        date = raw.columns[0]
    if date is None:
        raise DataValidationError(
            f"{path}: no date column (one of {', '.join(_DATE_ALIASES)}); "
            f"found {', '.join(map(str, raw.columns)) or 'none'}"
        )
    stamps = parse_timestamps(raw[date], timezone)
    table = raw.set_axis(pd.DatetimeIndex(stamps), axis=0).drop(columns=[date])
    table = table.loc[table.index.notna()].sort_index(kind="stable")
    table = table.loc[~table.index.duplicated(keep="last")]
    if table.empty:
        raise DataValidationError(f"{path}: no row with a readable date")
    return table


def _numbers(table: pd.DataFrame, names: Sequence[str], path: Path) -> pd.Series:
    """The first of ``names`` present (any case) as floats; FRED's ``.`` becomes NaN."""
    by_name = {str(c).strip().lower(): c for c in table.columns}
    column = next((by_name[n] for n in names if n in by_name), None)
    if column is None:
        raise DataValidationError(
            f"{path}: no value column (one of {', '.join(names)}); "
            f"found {', '.join(map(str, table.columns)) or 'none'}"
        )
    values = pd.to_numeric(table[column], errors="coerce").astype(np.float64)
    if values.isna().all():
        raise DataValidationError(f"{path}: column {column} holds no number")
    return values


def _leveraged(by_name: Mapping[str, Any], side: str, path: Path) -> Any:
    """The TFF report's leveraged-funds column for ``side`` (KTRDR's rule for its names)."""
    exact = f"lev_money_positions_{side}"
    found = [c for name, c in by_name.items() if name.startswith(exact)]
    found += [c for name, c in by_name.items() if "lev" in name and side in name]
    if not found:
        raise DataValidationError(
            f"{path}: no net_position column and no leveraged-funds {side} column "
            f"(Lev_Money_Positions_{side.title()}_All)"
        )
    return found[0]


def _published(table: pd.DataFrame, default: np.ndarray) -> np.ndarray:
    """When each row became known: the file's ``published`` column where it has one."""
    by_name = {str(c).strip().lower(): c for c in table.columns}
    if _PUBLISHED not in by_name:
        return default
    given = parse_timestamps(table[by_name[_PUBLISHED]]).array.asi8
    return np.where(given == np.iinfo(np.int64).min, default, given)


def _percentile_rank(values: pd.Series, window: int) -> pd.Series:
    """KTRDR's COT percentile: the share (0-100) of the previous ``window - 1`` values below
    the latest; NaN until ``window`` values exist."""
    numbers = values.to_numpy(dtype=np.float64)
    ranks = np.full(len(numbers), np.nan)
    if len(numbers) >= window:
        windows = sliding_window_view(numbers, window)
        below = (windows[:, :-1] < windows[:, -1:]).sum(axis=1)
        ranks[window - 1 :] = below / (window - 1) * 100.0
    return pd.Series(ranks, index=values.index)


def _external(source_id: str, values: pd.Series, known_at: np.ndarray) -> ContextSeries:
    """A value per row as bars (open = high = low = close, volume 0), leading NaN dropped."""
    numbers = values.to_numpy(dtype=np.float64)
    first = int(np.argmax(~np.isnan(numbers))) if (~np.isnan(numbers)).any() else len(numbers)
    numbers, index = numbers[first:], pd.DatetimeIndex(values.index[first:])
    bars = pd.DataFrame(
        {"open": numbers, "high": numbers, "low": numbers, "close": numbers, "volume": 0.0},
        index=index,
    )
    return ContextSeries(source_id, bars, np.maximum.accumulate(np.asarray(known_at)[first:]))
