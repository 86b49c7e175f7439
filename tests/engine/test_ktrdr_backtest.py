"""KTRDR's backtester runs our exported models on the bars of the test part, as trained.

Each strategy of ``ktrdr_strategies/`` is trained for one epoch on generated bars; its KTRDR
folder is then loaded the way KTRDR's ``ModelBundle.load`` does and fed the inputs KTRDR's
backtester builds from the same bars (``tests/engine/ktrdr_bundle.py``, written from KTRDR's
documented format). On the test part's bars the exported network gives the engine's own
outputs (the engine's model on its own standardised inputs). Strategy files KTRDR cannot
backtest as written (a transformer, an MLP over two bars, price ratios KTRDR has no input
for, KTRDR's SuperTrend and ZigZag) say so in the folder and the result; a variant of each
that KTRDR can run is checked in their place, so MLP, LSTM and GRU networks with classes
(3 and 4) and a regression head are all covered.

Higher timeframes differ on purpose: KTRDR's backtester shows a 4-hour bar to the 1-hour
bars from its open, the engine once it has closed. On the 1-hour bars that close a 4-hour
bar both read the same bar and give the same output; on the others KTRDR's backtest of our
model is our model fed the 4-hour inputs the engine would see three bars later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from training_engine.artifacts import load_trained_model
from training_engine.data import load_ohlcv, timeframe_delta
from training_engine.features import compute_feature_matrix
from training_engine.job import TrainingResult
from training_engine.ktrdr_export import UNSUPPORTED_FILE, V3_METADATA_FILE
from training_engine.sample_data import write_sample_data
from training_engine.strategy import StrategyConfig, parse_strategy
from training_engine.trainer import train

from tests.engine.ktrdr_bundle import KtrdrBundle, backtest_inputs, bundle_outputs, load_bundle
from tests.engine.synthetic import cpu_job

pytestmark = pytest.mark.slow

STRATEGIES = Path(__file__).parent / "ktrdr_strategies"
Edit = Callable[[dict[str, Any]], None]


def _lookback(periods: int) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document.setdefault("model", {}).setdefault("features", {})["lookback_periods"] = periods

    return edit


def _lstm_without_vol(document: dict[str, Any]) -> None:
    document["model"]["type"] = "lstm"
    document["fuzzy_sets"].pop("vol")


def _inputs(*groups: str) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document["nn_inputs"] = [{"fuzzy_set": group, "timeframes": "all"} for group in groups]

    return edit


# case -> (strategy file, an edit making a variant, why KTRDR cannot backtest it or None)
CASES: dict[str, tuple[str, Edit | None, str | None]] = {
    "v1_classic_zigzag": ("v1_classic_zigzag", None, "an MLP over 2 bars"),
    "v1_classic_zigzag_one_bar": ("v1_classic_zigzag", _lookback(1), None),
    "v1_cusum_triple_barrier": ("v1_cusum_triple_barrier", None, None),
    "v1_lookahead_move": ("v1_lookahead_move", None, None),
    "v3_context": ("v3_context", None, None),
    "v3_forward_return_mse": ("v3_forward_return_mse", None, None),
    "v3_forward_return_regression": ("v3_forward_return_regression", None, None),
    "v3_multi_scale_regime": ("v3_multi_scale_regime", None, "model type transformer"),
    "v3_multi_scale_regime_lstm": ("v3_multi_scale_regime", _lstm_without_vol, None),
    "v3_trend_regime": ("v3_trend_regime", None, "KTRDR's SuperTrend never leaves"),
    "v3_trend_regime_ktrdr_inputs": (
        "v3_trend_regime",
        _inputs("aroon_up", "aroon_osc", "fisher", "rvi", "strength"),
        None,
    ),
    "v3_volume_triple_barrier": (
        "v3_volume_triple_barrier",
        None,
        "fuzzy set 'vwap_ratio' reads close / vwap_20",
    ),
    # The OBV set is a gaussian of sigma 1e9: its membership hardly leaves 1 on these bars.
    "v3_volume_triple_barrier_near_constant": (
        "v3_volume_triple_barrier",
        _inputs("flow", "money", "money_trend", "obv_level", "ad_strength", "volume"),
        "input 1h_obv_obv_level_any hardly varies on the train part",
    ),
    "v3_volume_triple_barrier_ktrdr_inputs": (
        "v3_volume_triple_barrier",
        _inputs("flow", "money", "money_trend", "ad_strength", "volume"),
        None,
    ),
}


@pytest.fixture(scope="module")
def bars_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated hourly and 4-hourly bars, fewer than the shared sample data (fast)."""
    folder = tmp_path_factory.mktemp("ktrdr_backtest_bars")
    write_sample_data(folder, timeframes=("1h", "4h"), bars=1500)
    return folder


def _strategy(case: str) -> StrategyConfig:
    name, edit, _ = CASES[case]
    document = yaml.safe_load((STRATEGIES / f"{name}.yaml").read_text())
    if edit is not None:
        edit(document)
    return parse_strategy(document)


def _test_bars(result: TrainingResult, symbol: str, base: pd.DataFrame) -> pd.DatetimeIndex:
    part = next(
        p
        for p in result.evaluation["splits"]["parts"]
        if p["symbol"] == symbol and p["part"] == "test"
    )
    first, last = pd.Timestamp(part["first_bar"]), pd.Timestamp(part["last_bar"])
    return base.index[(base.index >= first) & (base.index <= last)]


def _engine_outputs(
    result: TrainingResult, frames: dict[str, pd.DataFrame], bars: pd.DatetimeIndex
) -> tuple[np.ndarray, pd.DataFrame]:
    """The engine's model on its own standardised inputs, and its raw inputs by bar."""
    trained = load_trained_model(result.model_path or Path())
    matrix = compute_feature_matrix(trained.strategy, frames)  # float64, cast as training does
    rows = matrix.values.astype(np.float32)
    if trained.normalization is not None:
        rows = trained.normalization.apply(rows)
    raw = pd.DataFrame(matrix.values, index=matrix.index, columns=list(matrix.names))
    return _windows_through(trained.model, rows, matrix.index, bars, trained.lookback), raw


def _windows_through(
    model: torch.nn.Module,
    rows: np.ndarray,
    index: pd.DatetimeIndex,
    bars: pd.DatetimeIndex,
    lookback: int,
) -> np.ndarray:
    positions = index.get_indexer(bars)
    assert (positions >= lookback - 1).all()
    windows = np.stack([rows[p - lookback + 1 : p + 1] for p in positions])
    with torch.no_grad():
        out: np.ndarray = model.eval()(torch.from_numpy(windows)).numpy()
    return out


def _check_higher_timeframes(
    bundle: KtrdrBundle,
    result: TrainingResult,
    ours_raw: pd.DataFrame,
    theirs: pd.DataFrame,
    bars: pd.DatetimeIndex,
    ktrdr_outputs: np.ndarray,
    engine_outputs: np.ndarray,
) -> None:
    """KTRDR reads a higher-timeframe bar from its open: the engine's inputs bars later."""
    base = bundle.metadata["training_timeframes"][0]
    trained = load_trained_model(result.model_path or Path())
    closing = np.ones(len(bars), dtype=bool)
    shifted = ours_raw.copy()
    for timeframe in bundle.metadata["training_timeframes"][1:]:
        per_bar = int(timeframe_delta(timeframe) / timeframe_delta(base))
        # A base bar sees the same higher bar on both sides when it closes with it.
        closing &= ((bars - bars.normalize()) / timeframe_delta(base)).astype(int) % per_bar == (
            per_bar - 1
        )
        for position, name in enumerate(bundle.feature_names):
            if name.startswith(f"{timeframe}_"):
                ours = ours_raw.columns[position]
                later = ours_raw[ours].shift(-(per_bar - 1))
                np.testing.assert_allclose(
                    theirs[name].loc[bars], later.loc[bars], rtol=1e-9, atol=1e-12, err_msg=name
                )
                shifted[ours] = later
    np.testing.assert_allclose(
        ktrdr_outputs[closing], engine_outputs[closing], rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(ktrdr_outputs[~closing], engine_outputs[~closing], atol=1e-5), (
        "on the other bars KTRDR's backtest reads the 4-hour bar before it closes"
    )
    rows = shifted.to_numpy(np.float32)
    if trained.normalization is not None:
        rows = trained.normalization.apply(rows)
    what_ktrdr_runs = _windows_through(trained.model, rows, shifted.index, bars, trained.lookback)
    np.testing.assert_allclose(ktrdr_outputs, what_ktrdr_runs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_ktrdrs_backtest_of_the_exported_model_gives_the_engines_outputs(
    case: str, bars_dir: Path, tmp_path: Path
) -> None:
    strategy = _strategy(case)
    result = train(cpu_job(strategy, bars_dir, tmp_path, epochs=1))
    folder = result.ktrdr_model_path
    assert result.status == "completed" and folder is not None and result.ktrdr_error is None
    unsupported = CASES[case][2]
    if unsupported is not None:
        note = (folder / UNSUPPORTED_FILE).read_text()
        assert result.ktrdr_unsupported is not None and unsupported in result.ktrdr_unsupported
        assert unsupported in note
        assert not (folder / V3_METADATA_FILE).exists()
        return
    assert result.ktrdr_unsupported is None
    assert not (folder / UNSUPPORTED_FILE).exists()
    bundle = load_bundle(folder)
    assert bundle.metadata["model_type"] == strategy.model.type
    higher = len(bundle.metadata["training_timeframes"]) > 1
    for symbol in strategy.symbols:
        frames = {tf: load_ohlcv(bars_dir, symbol, tf) for tf in strategy.timeframes}
        bars = _test_bars(result, symbol, frames[strategy.base_timeframe])
        theirs = backtest_inputs(bundle.metadata, frames)
        ktrdr_outputs = bundle_outputs(bundle, theirs, bars)
        engine_outputs, ours_raw = _engine_outputs(result, frames, bars)
        assert len(bars) > 50 and ktrdr_outputs.shape == engine_outputs.shape
        if higher:
            _check_higher_timeframes(
                bundle, result, ours_raw, theirs, bars, ktrdr_outputs, engine_outputs
            )
        else:
            np.testing.assert_allclose(ktrdr_outputs, engine_outputs, rtol=1e-5, atol=1e-5)
    regression = bundle.decisions["output_format"] == "regression"
    assert regression == (strategy.labels.task == "regression")
    assert json.loads((folder / "features.json").read_text())["feature_count"] == len(
        bundle.feature_names
    )
