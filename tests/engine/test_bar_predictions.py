"""A saved model predicts from OHLCV bars as the trainer predicted, and never from later bars."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from training_engine.artifacts import TrainedModel, load_trained_model, save_model_artifact
from training_engine.data import load_ohlcv
from training_engine.dataset import PreparedDataset, prepare_dataset
from training_engine.errors import ArtifactError, DataValidationError
from training_engine.features import compute_features
from training_engine.strategy import StrategyConfig, load_strategy, parse_strategy, with_overrides
from training_engine.trainer import fit

torch.set_num_threads(1)


@dataclass(frozen=True)
class TrainedRun:
    """A model fitted on the sample data, saved, loaded back, and what the trainer predicted."""

    strategy: StrategyConfig
    data: PreparedDataset
    test_predictions: np.ndarray  # the trainer's, one per test sample, in sample order
    model: TrainedModel


def _train(strategy: StrategyConfig, data_dir: Path, models_dir: Path) -> TrainedRun:
    data = prepare_dataset(strategy, data_dir)
    outcome = fit(data, strategy)
    assert outcome.test_predictions is not None
    path = save_model_artifact(models_dir, strategy, outcome.model, data, outcome.result)
    return TrainedRun(strategy, data, outcome.test_predictions, load_trained_model(path))


def _strategy(strategies_dir: Path, name: str, **overrides: Any) -> StrategyConfig:
    return with_overrides(
        load_strategy(strategies_dir / f"{name}.yaml"), training={"epochs": 2}, **overrides
    )


@pytest.fixture(scope="module")
def two_symbol_mlp(
    strategies_dir: Path, sample_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainedRun:
    """An MLP on 1h bars with 4h context, trained on AAPL and MSFT together."""
    strategy = _strategy(strategies_dir, "multi_timeframe_mlp")
    assert strategy.timeframes == ("1h", "4h") and strategy.symbols == ("AAPL", "MSFT")
    return _train(strategy, sample_data_dir, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def daily_context_lstm(
    strategies_dir: Path, sample_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainedRun:
    """An LSTM on 1h bars with daily context (a 24-bar window)."""
    strategy = _strategy(strategies_dir, "trend_lstm", timeframes=["1h", "1d"])
    assert strategy.model.type == "lstm"
    return _train(strategy, sample_data_dir, tmp_path_factory.mktemp("models"))


def _bars_as_files_hold_them(data_dir: Path, symbol: str, timeframe: str) -> pd.DataFrame:
    """A data file read as a user reads it: timestamps in a column, as text."""
    return pd.read_csv(data_dir / f"{symbol}_{timeframe}.csv")


def _bars_indexed_by_time(data_dir: Path, symbol: str, timeframe: str) -> pd.DataFrame:
    return pd.read_csv(
        data_dir / f"{symbol}_{timeframe}.csv", index_col="timestamp", parse_dates=True
    )


def _test_bars(run: TrainedRun, data_dir: Path) -> dict[str, pd.DatetimeIndex]:
    """Per symbol, the base bar each of its test samples ends at, in sample order.

    The dataset keeps the feature rows of all symbols end to end; a symbol's rows are the
    base bars its features exist for (``compute_features``, as ``prepare_dataset`` built).
    """
    bars: dict[str, pd.DatetimeIndex] = {}
    ends, offset = run.data.test_ends, 0
    for symbol in run.strategy.symbols:
        frames = {tf: load_ohlcv(data_dir, symbol, tf) for tf in run.strategy.timeframes}
        rows = compute_features(run.strategy, frames).index
        mine = ends[(ends >= offset) & (ends < offset + len(rows))] - offset
        bars[symbol] = pd.DatetimeIndex(rows[mine])
        offset += len(rows)
    assert offset == len(run.data.rows)
    return bars


def test_predictions_from_bars_equal_the_trainers_on_the_test_part_for_a_two_symbol_mlp(
    two_symbol_mlp: TrainedRun, sample_data_dir: Path
) -> None:
    run = two_symbol_mlp
    labels: list[str] = []
    for symbol, test_bars in _test_bars(run, sample_data_dir).items():
        frames = {
            tf: _bars_as_files_hold_them(sample_data_dir, symbol, tf)
            for tf in run.strategy.timeframes
        }
        labels += list(run.model.predict_bars(frames).loc[test_bars, "label"])
    expected = [run.model.class_names[k] for k in run.test_predictions]

    assert len(labels) == len(run.data.y_test) > 100
    assert labels == expected


def test_predictions_from_bars_equal_the_trainers_on_the_test_part_for_a_daily_context_lstm(
    daily_context_lstm: TrainedRun, sample_data_dir: Path
) -> None:
    run = daily_context_lstm
    (symbol, test_bars), *_ = _test_bars(run, sample_data_dir).items()
    frames = {tf: _bars_indexed_by_time(sample_data_dir, symbol, tf) for tf in ("1h", "1d")}

    predictions = run.model.predict_bars(frames).loc[test_bars]

    assert len(predictions) == len(run.data.y_test) > 100
    assert list(predictions["label"]) == [run.model.class_names[k] for k in run.test_predictions]
    probabilities = predictions[run.model.class_names].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert len(set(predictions["label"])) > 1  # a model that answers one class proves little


def test_a_bars_prediction_does_not_change_when_later_bars_arrive_or_an_open_daily_bar_moves(
    daily_context_lstm: TrainedRun, sample_data_dir: Path
) -> None:
    model = daily_context_lstm.model
    full = {tf: _bars_indexed_by_time(sample_data_dir, "AAPL", tf) for tf in ("1h", "1d")}
    everything = model.predict_bars(full)
    hourly = full["1h"].index
    for now in (hourly[2200], hourly[2500] + pd.Timedelta(hours=3)):
        assert 0 < now.hour < 23  # the day's daily bar is still open at the close of `now`
        known = {tf: frame.loc[:now].copy() for tf, frame in full.items()}
        # The still-open daily bar as it might look mid-day: anything at all.
        known["1d"].iloc[-1] = known["1d"].iloc[-1] * [1.3, 1.5, 0.6, 1.4, 0.1]

        so_far = model.predict_bars(known)

        assert so_far.index.equals(everything.loc[:now].index)
        assert so_far["label"].notna().sum() > 100
        pd.testing.assert_frame_equal(so_far, everything.loc[:now], check_exact=False, rtol=1e-5)


def test_a_model_of_a_forward_return_predicts_the_values_the_trainer_predicted(
    strategies_dir: Path, sample_data_dir: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load((strategies_dir / "momentum_mlp.yaml").read_text())
    document["training"]["labels"] = {"source": "forward_return", "horizon": 6}
    strategy = with_overrides(parse_strategy(document), training={"epochs": 2})
    run = _train(strategy, sample_data_dir, tmp_path)
    test_bars = _test_bars(run, sample_data_dir)["AAPL"]

    predictions = run.model.predict_bars(_bars_as_files_hold_them(sample_data_dir, "AAPL", "1h"))

    assert list(predictions.columns) == ["value"]
    np.testing.assert_allclose(
        predictions.loc[test_bars, "value"], run.test_predictions, rtol=1e-5, atol=1e-6
    )
    windows = np.zeros((1, run.model.lookback, len(run.model.feature_names)), dtype=np.float32)
    with pytest.raises(ArtifactError, match="a regression model has no class probabilities"):
        run.model.predict_proba(windows)


def test_bars_before_a_full_window_of_features_have_no_prediction(
    two_symbol_mlp: TrainedRun, sample_data_dir: Path
) -> None:
    run = two_symbol_mlp
    frames = {tf: _bars_as_files_hold_them(sample_data_dir, "MSFT", tf) for tf in ("1h", "4h")}
    first_feature_row = compute_features(
        run.strategy, {tf: load_ohlcv(sample_data_dir, "MSFT", tf) for tf in ("1h", "4h")}
    ).index[0]

    predictions = run.model.predict_bars(frames)

    assert len(predictions) == len(frames["1h"])
    assert list(predictions.columns) == [*run.model.class_names, "label"]
    predicted = predictions.index[predictions["label"].notna()]
    first = int(predictions.index.searchsorted(first_feature_row)) + run.model.lookback - 1
    assert predicted[0] == predictions.index[first]
    assert predictions.iloc[:first].isna().all().all()
    assert predictions.iloc[first:].notna().all().all()


def test_another_symbol_is_predicted_by_a_model_trained_on_two(
    two_symbol_mlp: TrainedRun, sample_data_dir: Path
) -> None:
    frames = {tf: _bars_as_files_hold_them(sample_data_dir, "EURUSD", tf) for tf in ("1h", "4h")}

    predictions = two_symbol_mlp.model.predict_bars(frames)

    assert predictions["label"].notna().sum() > 2500


def test_one_frame_for_a_model_of_two_timeframes_is_refused_naming_them(
    two_symbol_mlp: TrainedRun, sample_data_dir: Path
) -> None:
    bars = _bars_as_files_hold_them(sample_data_dir, "AAPL", "1h")

    with pytest.raises(DataValidationError, match=r"reads timeframes 1h, 4h: pass \{timeframe"):
        two_symbol_mlp.model.predict_bars(bars)
    with pytest.raises(DataValidationError, match=r"no frame for 4h \(given: 1h, 1d\)"):
        two_symbol_mlp.model.predict_bars({"1h": bars, "1d": bars})


def test_bars_without_a_close_are_refused_naming_the_column(
    two_symbol_mlp: TrainedRun, sample_data_dir: Path
) -> None:
    frames = {tf: _bars_as_files_hold_them(sample_data_dir, "AAPL", tf) for tf in ("1h", "4h")}
    frames["4h"] = frames["4h"].drop(columns="close")

    with pytest.raises(DataValidationError, match=r"4h bars: missing required column\(s\) close"):
        two_symbol_mlp.model.predict_bars(frames)
