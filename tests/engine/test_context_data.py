"""Context data (KTRDR's ``context_data`` and an indicator's ``data_source``).

Another instrument (``ib``), FRED series (``fred``) and CFTC COT reports (``cftc_cot``) are
read from files in the data folder, aligned on the traded bars' closes with values already
published carried forward, and indicators run on them. A series changing after bar t
changes no feature up to t.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from training_engine.artifacts import load_trained_model
from training_engine.cli import EXIT_BAD_INPUT, main
from training_engine.context_data import (
    ContextSeries,
    align_context,
    check_context_files,
    load_context,
)
from training_engine.data import load_ohlcv
from training_engine.errors import (
    DataFileNotFoundError,
    DataValidationError,
    StrategyConfigError,
    UnsafePathError,
)
from training_engine.features import compute_features
from training_engine.indicators import compute_indicator
from training_engine.strategy import load_strategy, parse_strategy

SUITE = Path(__file__).parent / "ktrdr_strategies"
CARRY = SUITE / "v3_carry_context.yaml"


def _document(
    context: list[dict[str, Any]], indicators: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "name": "ctx",
        "version": "3.0",
        "training_data": {"symbols": ["EURUSD"], "timeframes": ["1h"]},
        "context_data": context,
        "indicators": indicators,
        **extra,
    }


GBP = {"provider": "ib", "symbol": "GBPUSD", "timeframe": "1h"}
YIELDS = {"provider": "fred", "series": ["DGS2", "DGS10"]}
COT = {"provider": "cftc_cot", "report": "EUR"}


# ---------------------------------------------------------------- the strategy file


def test_a_carry_strategy_names_its_context_sources_and_what_reads_them() -> None:
    strategy = load_strategy(CARRY)
    assert [entry.provider for entry in strategy.context_data] == ["ib", "fred", "cftc_cot"]
    assert set(strategy.context_sources) == {
        "GBPUSD",
        "fred_DGS2",
        "fred_DGS10",
        "yield_spread_DGS2_DGS10",
        "cot_EUR_net_pos",
        "cot_EUR_net_pct",
    }
    reads = {spec.feature_id: spec.data_source for spec in strategy.indicators}
    assert reads == {
        "rsi_14": None,
        "gbp_rsi_14": "GBPUSD",
        "curve_rsi": "yield_spread_DGS2_DGS10",
        "positioning_ema": "cot_EUR_net_pct",
    }


def test_a_data_source_no_entry_gives_is_refused_naming_the_ids() -> None:
    document = _document([GBP], {"r": {"type": "rsi", "data_source": "fred_DGS2"}})
    with pytest.raises(StrategyConfigError) as caught:
        parse_strategy(document)
    assert caught.value.key == "indicators.r.data_source"
    assert "'fred_DGS2'" in caught.value.problem and "['GBPUSD']" in caught.value.problem
    no_context = _document([], {"r": {"type": "rsi", "data_source": "GBPUSD"}})
    with pytest.raises(StrategyConfigError, match="no context_data declared"):
        parse_strategy(no_context)


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({"provider": "calendar"}, "context_data[0].provider", "expected one of ib, fred"),
        ({"provider": "ib"}, "context_data[0].symbol", "needs 'symbol'"),
        ({"provider": "fred", "series": []}, "context_data[0].series", "needs 'series'"),
        ({**COT, "alignment": "interpolate"}, "context_data[0].alignment", "forward_fill"),
        ({"provider": "fred", "series": "../../etc/passwd"}, "context_data[0].series", "an id"),
        ({"provider": "cftc_cot", "report": "a/b"}, "context_data[0].report", "an id"),
        ({"provider": "ib", "symbol": "../GBPUSD"}, "context_data[0].symbol", "a symbol"),
    ],
)
def test_a_bad_context_entry_is_refused_naming_its_key(
    entry: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(StrategyConfigError) as caught:
        parse_strategy(_document([entry], {"r": {"type": "rsi"}}))
    assert caught.value.key.startswith(key), caught.value
    assert words in caught.value.problem


def test_two_entries_giving_one_source_id_are_refused() -> None:
    with pytest.raises(StrategyConfigError, match="given twice"):
        parse_strategy(_document([GBP, GBP], {"r": {"type": "rsi", "data_source": "GBPUSD"}}))


# ---------------------------------------------------------------- files


def test_a_missing_context_file_names_the_files_looked_for(tmp_path: Path) -> None:
    strategy = load_strategy(CARRY)
    with pytest.raises(DataFileNotFoundError) as caught:
        check_context_files(tmp_path, strategy)
    message = str(caught.value)
    assert "GBPUSD 1h (context_data[0])" in message
    assert str(tmp_path.resolve() / "GBPUSD_1h.csv") in message
    assert str(tmp_path.resolve() / "GBPUSD_1h.parquet") in message


def test_each_provider_names_the_file_it_needs(sample_data_dir: Path, tmp_path: Path) -> None:
    strategy = load_strategy(CARRY)
    for name, what in (
        ("DGS10.csv", "FRED series DGS10 (context_data[1])"),
        ("cot_EUR.csv", "CFTC COT report EUR (context_data[2])"),
    ):
        folder = tmp_path / name
        shutil.copytree(sample_data_dir, folder)
        (folder / name).unlink()
        with pytest.raises(DataFileNotFoundError) as caught:
            load_context(strategy, folder)
        assert what in str(caught.value)
        assert str(folder.resolve() / name) in str(caught.value)


def test_a_context_file_linking_out_of_the_data_folder_is_refused(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    shutil.copytree(sample_data_dir, folder)
    (folder / "DGS2.csv").unlink()
    (folder / "DGS2.csv").symlink_to(sample_data_dir / "DGS2.csv")
    with pytest.raises(UnsafePathError, match=r"DGS2\.csv"):
        load_context(load_strategy(CARRY), folder)


def test_the_cli_reports_a_missing_context_file_with_exit_2(
    sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    shutil.copytree(sample_data_dir, folder)
    (folder / "cot_EUR.csv").unlink()
    code = main(["train", str(CARRY), "--data-dir", str(folder), "--models-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "CFTC COT report EUR" in err and "cot_EUR.csv" in err and "Traceback" not in err


# ---------------------------------------------------------------- alignment


def _hours(start: str, count: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=count, freq="1h", tz="UTC")


def _write(path: Path, rows: dict[str, list[Any]]) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


def _one_source(tmp_path: Path, entry: dict[str, Any], source: str) -> ContextSeries:
    strategy = parse_strategy(_document([entry], {"x": {"type": "rsi", "data_source": source}}))
    return load_context(strategy, tmp_path)[source]


def _seen(series: ContextSeries, bars: pd.DatetimeIndex) -> pd.Series:
    return align_context(series, bars, "1h")["close"]


def test_an_instruments_bar_is_seen_from_the_bar_closing_with_it(tmp_path: Path) -> None:
    stamps = _hours("2024-03-04 10:00", 3)
    prices = [1.0, 2.0, 3.0]
    _write(
        tmp_path / "GBPUSD_1h.csv",
        {"timestamp": stamps.strftime("%Y-%m-%dT%H:%MZ").tolist(), "open": prices,
         "high": prices, "low": prices, "close": prices, "volume": [1, 1, 1]},
    )  # fmt: skip
    seen = _seen(_one_source(tmp_path, GBP, "GBPUSD"), _hours("2024-03-04 09:00", 5))
    # The 10:00 bar closes at 11:00, with the base bar stamped 10:00; the last is carried on.
    assert seen.tolist()[:1] == [pytest.approx(np.nan, nan_ok=True)]
    assert seen.tolist()[1:] == [1.0, 2.0, 3.0, 3.0]


def test_a_fred_value_is_seen_once_its_day_is_over_and_dots_carry_the_last(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path / "DGS2.csv",
        {"observation_date": ["2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12"],
         "DGS2": ["4.50", "4.60", ".", "4.80"]},
    )  # fmt: skip
    entry = {"provider": "fred", "series": "DGS2"}
    bars = _hours("2024-03-07 22:00", 6 * 24)
    seen = _seen(_one_source(tmp_path, entry, "fred_DGS2"), bars)
    # KTRDR's aligner would show Thursday's value at Thursday 00:00; here it shows once
    # Thursday is over (its next observation's date), Friday's on Monday 00:00.
    assert np.isnan(seen[pd.Timestamp("2024-03-07 22:00", tz="UTC")])
    assert seen[pd.Timestamp("2024-03-07 23:00", tz="UTC")] == 4.50  # closes Fri 00:00
    assert seen[pd.Timestamp("2024-03-10 22:00", tz="UTC")] == 4.50
    assert seen[pd.Timestamp("2024-03-10 23:00", tz="UTC")] == 4.60  # closes Mon 00:00
    assert seen[pd.Timestamp("2024-03-11 23:00", tz="UTC")] == 4.60  # Monday's "." carries
    # The last observation's period ends after the series' usual spacing (a day).
    assert seen[pd.Timestamp("2024-03-12 22:00", tz="UTC")] == 4.60
    assert seen[pd.Timestamp("2024-03-12 23:00", tz="UTC")] == 4.80


def test_a_published_column_says_when_a_value_became_known(tmp_path: Path) -> None:
    _write(
        tmp_path / "DGS2.csv",
        {"date": ["2024-03-07", "2024-03-08"], "value": [4.5, 4.6],
         "published": ["2024-03-08T20:15Z", "2024-03-11T20:15Z"]},
    )  # fmt: skip
    seen = _seen(_one_source(tmp_path, {"provider": "fred", "series": "DGS2"}, "fred_DGS2"),
                 _hours("2024-03-08 18:00", 4))  # fmt: skip
    assert np.isnan(seen.iloc[:2]).all() and seen.iloc[3] == 4.5  # 20:00 closes 21:00


def test_a_yield_spread_is_a_minus_b_known_once_both_are(tmp_path: Path) -> None:
    _write(tmp_path / "DGS2.csv", {"date": ["2024-03-07", "2024-03-08"], "DGS2": [4.5, 4.6]})
    _write(tmp_path / "DGS10.csv", {"date": ["2024-03-08", "2024-03-11"], "DGS10": [4.0, 4.1]})
    spread = _one_source(tmp_path, YIELDS, "yield_spread_DGS2_DGS10")
    assert spread.bars["close"].tolist() == [pytest.approx(0.6)]  # the common date only
    # DGS2's Friday is known Saturday (its usual spacing), DGS10's on Monday: both by Monday.
    assert spread.known_at.tolist() == [pd.Timestamp("2024-03-11", tz="UTC").value]


def test_a_cot_report_is_seen_after_fridays_release_and_ranks_over_52_weeks(
    tmp_path: Path,
) -> None:
    tuesdays = pd.date_range("2023-01-03", periods=60, freq="W-TUE")
    net = np.arange(60.0) % 7 * 1000
    rows = {
        "Market_and_Exchange_Names": ["EURO FX - CHICAGO MERCANTILE EXCHANGE"] * 60,
        "Report_Date_as_YYYY-MM-DD": tuesdays.strftime("%Y-%m-%d").tolist(),
        "Lev_Money_Positions_Long_All": (50000 + net).tolist(),
        "Lev_Money_Positions_Short_All": [50000.0] * 60,
    }
    other = {**rows, "Market_and_Exchange_Names": ["BRITISH POUND"] * 60}
    frame = pd.concat([pd.DataFrame(rows), pd.DataFrame(other).assign(
        Lev_Money_Positions_Long_All=0.0)])  # fmt: skip
    frame.to_csv(tmp_path / "cot_EUR.csv", index=False)
    strategy = parse_strategy(
        _document([COT], {"x": {"type": "ema", "period": 4, "data_source": "cot_EUR_net_pct"}})
    )
    loaded = load_context(strategy, tmp_path)
    positions = loaded["cot_EUR_net_pos"].bars["close"]
    assert positions.tolist() == net.tolist()  # EURO FX rows only, long - short
    ranks = loaded["cot_EUR_net_pct"].bars["close"]
    assert len(ranks) == 60 - 51  # from the 52nd report on
    window = net[8:60]
    assert ranks.iloc[-1] == pytest.approx((window[:-1] < window[-1]).sum() / 51 * 100)
    # Tuesday 2024-02-06's report (the 58th) is out Friday 2024-02-09 15:30 New York
    # (20:30 UTC): the bar stamped 20:00 (closing 21:00) is the first to see it.
    bars = _hours("2024-02-09 18:00", 4)
    seen = align_context(loaded["cot_EUR_net_pos"], bars, "1h")["close"]
    assert tuesdays[57] == pd.Timestamp("2024-02-06")
    assert seen.tolist() == [net[56], net[56], net[57], net[57]]


# ---------------------------------------------------------------- no look-ahead


def _scramble_after(folder: Path, instant: pd.Timestamp, seed: int) -> None:
    """Every context row stamped at or after ``instant`` gets other values."""
    rng = np.random.default_rng(seed)
    gbp = pd.read_csv(folder / "GBPUSD_1h.csv")
    late = (pd.to_datetime(gbp["timestamp"], utc=True) >= instant).to_numpy()
    factor = rng.uniform(0.8, 1.25, int(late.sum()))
    for column in ("open", "high", "low", "close"):
        gbp.loc[late, column] = gbp.loc[late, column] * factor
    gbp.to_csv(folder / "GBPUSD_1h.csv", index=False)
    for series in ("DGS2", "DGS10"):
        table = pd.read_csv(folder / f"{series}.csv", dtype=str)
        late = (pd.to_datetime(table["observation_date"], utc=True) >= instant).to_numpy()
        table.loc[late, series] = np.char.mod("%.2f", rng.uniform(0.0, 9.0, int(late.sum())))
        table.to_csv(folder / f"{series}.csv", index=False)
    cot = pd.read_csv(folder / "cot_EUR.csv")
    late = (pd.to_datetime(cot["Report_Date_as_YYYY-MM-DD"], utc=True) >= instant).to_numpy()
    cot.loc[late, "Lev_Money_Positions_Long_All"] = rng.uniform(0, 2e5, int(late.sum()))
    cot.to_csv(folder / "cot_EUR.csv", index=False)


def _carry_features(folder: Path) -> pd.DataFrame:
    strategy = load_strategy(CARRY)
    frame = load_ohlcv(folder, "EURUSD", "1h")
    return compute_features(strategy, {"1h": frame}, load_context(strategy, folder))


@pytest.mark.parametrize("bar", ["2023-02-03 11:00", "2023-03-10 20:00", "2023-04-18 23:00"])
def test_context_values_after_bar_t_change_no_feature_up_to_t(
    bar: str, sample_data_dir: Path, tmp_path: Path
) -> None:
    t = pd.Timestamp(bar, tz="UTC")
    original = _carry_features(sample_data_dir)
    folder = tmp_path / "data"
    shutil.copytree(sample_data_dir, folder)
    _scramble_after(folder, t + pd.Timedelta(hours=1), seed=3)  # after bar t's close
    changed = _carry_features(folder)
    upto = original.index <= t
    assert upto.sum() > 100
    pd.testing.assert_frame_equal(original.loc[upto], changed.loc[changed.index <= t])
    # The scrambling reached every context indicator's features after t.
    later = original.loc[~upto] != changed.loc[original.index[~upto]]
    for name in ("gbp_rsi_14", "curve_rsi", "positioning_ema"):
        columns = [c for c in original.columns if name in c]
        assert later[columns].to_numpy().any(), name


def test_an_indicator_on_a_context_series_is_computed_on_the_aligned_series(
    sample_data_dir: Path,
) -> None:
    # As KTRDR does: align the series onto the symbol's bars, then run the indicator.
    strategy = parse_strategy(
        _document([GBP], {"g": {"type": "rsi", "period": 14, "data_source": "GBPUSD"}})
    )
    frame = load_ohlcv(sample_data_dir, "EURUSD", "1h")
    context = load_context(strategy, sample_data_dir)
    features = compute_features(strategy, {"1h": frame}, context)
    aligned = align_context(context["GBPUSD"], pd.DatetimeIndex(frame.index), "1h")
    expected = compute_indicator(strategy.indicators[0], aligned)["g"]
    np.testing.assert_allclose(features["1h_g"], expected.loc[features.index])


# ---------------------------------------------------------------- end to end


def test_the_cli_trains_a_carry_strategy_and_the_model_keeps_its_context_data(
    sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data-dir", str(sample_data_dir), "--models-dir", str(tmp_path), "--quiet"]
    assert main(["train", str(CARRY), *args, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    model_dir = Path(out.split("model: ")[-1].splitlines()[0].strip())
    assert "GBPUSD 1h:" in out  # the instrument's file is in the data report
    metadata = json.loads((model_dir / "metadata.json").read_text())
    names = metadata["feature_names"]
    assert any(name.startswith("1h_gbp_rsi_14_") for name in names)
    assert any(name.startswith("1h_curve_rsi_") for name in names)
    assert any(name.startswith("1h_positioning_ema_") for name in names)
    saved = yaml.safe_load((model_dir / "strategy.yaml").read_text())["resolved"]
    assert [entry["provider"] for entry in saved["context_data"]] == ["ib", "fred", "cftc_cot"]
    assert {spec["feature_id"]: spec.get("data_source") for spec in saved["indicators"]} == {
        "rsi_14": None,
        "gbp_rsi_14": "GBPUSD",
        "curve_rsi": "yield_spread_DGS2_DGS10",
        "positioning_ema": "cot_EUR_net_pct",
    }
    # Predicting from bars reads the same context files, and says which folder it needs.
    model = load_trained_model(model_dir)
    bars = load_ohlcv(sample_data_dir, "EURUSD", "1h")
    with pytest.raises(DataValidationError, match="context_dir"):
        model.predict_bars(bars)
    predicted = model.predict_bars(bars, context_dir=sample_data_dir)
    assert len(predicted) == len(bars)
    outputs = predicted["label" if model.class_names else "value"]
    assert outputs.notna().sum() > len(bars) // 2


def test_sample_data_with_context_writes_what_the_carry_strategy_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    argv = ["sample-data", "--out", str(out), "--symbols", "EURUSD", "--timeframes", "1h"]
    assert main([*argv, "--bars", "600", "--context", "--format", "parquet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "DGS10.parquet",
        "DGS2.parquet",
        "EURUSD_1h.parquet",
        "GBPUSD_1h.parquet",
        "cot_EUR.parquet",
    ]
    check_context_files(out, load_strategy(CARRY))
    loaded = load_context(load_strategy(CARRY), out)
    assert len(loaded["cot_EUR_net_pct"].bars) > 100  # 160 weeks of history before the start
    assert "wrote 5 files" in capsys.readouterr().out


def test_an_entry_no_indicator_reads_is_listed_as_unused() -> None:
    document = _document([GBP, COT], {"g": {"type": "rsi", "data_source": "GBPUSD"}})
    assert "context_data[1]" in parse_strategy(document).ignored_keys
    assert "context_data[0]" not in parse_strategy(document).ignored_keys
