"""Several symbols split on common calendar boundaries: no symbol's train part overlaps
another's validation or test period (offset calendars, a near-copy of a symbol)."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_engine.dataset import PreparedDataset, SplitRange, prepare_dataset
from training_engine.errors import StrategyConfigError
from training_engine.sample_data import generate_hourly
from training_engine.strategy import StrategyConfig, parse_strategy

LOOKBACK, LOOKAHEAD = 4, 9
HOUR = pd.Timedelta(hours=1)


def _strategy(
    symbols: list[str], mode: str | None = None, labels: dict[str, object] | None = None
) -> StrategyConfig:
    split: dict[str, object] = {"mode": mode} if mode else {}
    return parse_strategy(
        {
            "name": "calendar",
            "training_data": {"symbols": symbols, "timeframes": ["1h"]},
            "indicators": [{"name": "rsi", "period": 14}, {"name": "roc", "period": 10}],
            "model": {"features": {"lookback_periods": LOOKBACK}},
            "training": {
                "labels": labels or {"zigzag_threshold": 0.01, "label_lookahead": LOOKAHEAD},
                "data_split": split,
            },
        }
    )


def _write(path: Path, frame: pd.DataFrame) -> None:
    frame.rename_axis("timestamp").reset_index().to_csv(path, index=False)


@pytest.fixture(scope="module")
def offset_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MSFT over 3000 hours; LATE starts 1000 hours later; COPY is MSFT's first 2000 hours
    with 0.01% noise (a near-copy whose data ends early)."""
    folder = tmp_path_factory.mktemp("offset")
    msft = generate_hourly("MSFT", 3000, seed=7, index=1)
    late = generate_hourly("LATE", 3000, seed=7, index=2)
    late.index = late.index + 1000 * HOUR
    noise = np.exp(np.random.default_rng(3).normal(0, 1e-4, (2000, 1)))
    copy = msft.iloc[:2000].copy()
    copy[["open", "high", "low", "close"]] = copy[["open", "high", "low", "close"]] * noise
    copy[["high", "low"]] = np.column_stack(
        [copy[["open", "high", "close"]].max(axis=1), copy[["open", "low", "close"]].min(axis=1)]
    )
    for name, frame in (("MSFT", msft), ("LATE", late), ("COPY", copy)):
        _write(folder / f"{name}_1h.csv", frame)
    return folder


def _parts(data: PreparedDataset, part: str) -> list[SplitRange]:
    return [r for r in data.splits if r.part == part and r.samples]


def _assert_no_calendar_overlap(data: PreparedDataset) -> None:
    for earlier, later in itertools.pairwise(("train", "validation", "test")):
        for a, b in itertools.product(_parts(data, earlier), _parts(data, later)):
            assert a.labels_end is not None and b.first_bar is not None
            # a's labels read bars up to labels_end (its own last bar: parts are labelled
            # from their own prices); b's first window starts LOOKBACK - 1 hours before its
            # first bar: they must not meet.
            label_end = a.labels_end
            window_start = b.first_bar - (LOOKBACK - 1) * HOUR
            assert label_end < window_start, (a, b)


@pytest.mark.parametrize("symbols", [["MSFT", "LATE"], ["MSFT", "COPY"]])
def test_common_calendar_split_keeps_every_train_part_before_every_later_part(
    offset_data: Path, symbols: list[str]
) -> None:
    data = prepare_dataset(_strategy(symbols), offset_data)
    assert data.split_mode == "calendar"
    _assert_no_calendar_overlap(data)
    train, validation, test = (
        sum(r.samples for r in data.splits if r.part == p) for p in ("train", "validation", "test")
    )
    assert train / (train + validation + test) == pytest.approx(0.6, abs=0.05)


@pytest.mark.parametrize(
    "labels",
    [
        {"source": "triple_barrier", "max_holding_period": 24, "compute_weights": True},
        {"source": "regime", "vol_lookback": 60},
    ],
    ids=["triple_barrier_weights", "regime"],
)
def test_each_part_is_labelled_after_the_common_calendar_cut(
    offset_data: Path, labels: dict[str, object]
) -> None:
    data = prepare_dataset(_strategy(["MSFT", "LATE"], labels=labels), offset_data)
    _assert_no_calendar_overlap(data)
    for split in data.splits:
        if split.samples:
            # a part's labels read its own bars only: up to its last candidate's bar
            assert split.last_bar is not None and split.labels_end is not None
            assert split.last_bar <= split.labels_end
    classes = 4 if labels["source"] == "regime" else 3
    assert len(data.class_names) == classes and data.y_train.max() < classes
    if labels.get("compute_weights"):
        assert data.w_train is not None and data.w_train.shape == data.y_train.shape
    else:
        assert data.w_train is None


def test_a_near_copy_ending_early_gets_no_test_part_inside_the_others_train_period(
    offset_data: Path,
) -> None:
    data = prepare_dataset(_strategy(["MSFT", "COPY"]), offset_data)
    msft_train = next(r for r in data.splits if (r.symbol, r.part) == ("MSFT", "train"))
    copy_test = next(r for r in data.splits if (r.symbol, r.part) == ("COPY", "test"))
    assert msft_train.last_bar is not None
    assert copy_test.samples == 0 or copy_test.first_bar > msft_train.last_bar  # type: ignore[operator]


def test_per_symbol_split_is_an_option_that_warns_and_overlaps(
    offset_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        data = prepare_dataset(_strategy(["MSFT", "COPY"], "per_symbol"), offset_data)
    assert data.split_mode == "per_symbol"
    assert "per_symbol" in caplog.text and "inside another's train period" in caplog.text
    msft_train = next(r for r in data.splits if (r.symbol, r.part) == ("MSFT", "train"))
    copy_test = next(r for r in data.splits if (r.symbol, r.part) == ("COPY", "test"))
    # The leak the common calendar removes: COPY's test year inside MSFT's train period.
    assert copy_test.first_bar < msft_train.last_bar  # type: ignore[operator]
    with pytest.raises(AssertionError):
        _assert_no_calendar_overlap(data)


def test_symbols_one_after_the_other_keep_the_order_of_the_parts(tmp_path: Path) -> None:
    early = generate_hourly("EARLY", 1500, seed=1)
    later = generate_hourly("LATER", 1500, seed=2)
    later.index = later.index + 1490 * HOUR
    _write(tmp_path / "EARLY_1h.csv", early)
    _write(tmp_path / "LATER_1h.csv", later)
    data = prepare_dataset(_strategy(["EARLY", "LATER"]), tmp_path)
    _assert_no_calendar_overlap(data)
    samples = {(r.symbol, r.part): r.samples for r in data.splits}
    assert samples[("EARLY", "test")] == 0 and samples[("LATER", "test")] > 0


def test_mode_is_validated() -> None:
    with pytest.raises(StrategyConfigError, match=r"data_split\.mode"):
        _strategy(["MSFT"], "by_symbol")
