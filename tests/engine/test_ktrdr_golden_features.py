"""Network inputs agree with KTRDR's own feature pipeline, run once on the golden series.

``data/ktrdr_golden_features.json`` holds numbers KTRDR's code (HEAD 2c5c7173) gave for
:func:`golden_frames` (the label golden test's series, and its 4-hour bars), at the bars
listed under ``samples``, for every strategy in ``ktrdr_strategies/``:

- ``indicators``: every output of every indicator, from KTRDR's ``IndicatorEngine``
  (``{id}`` / ``{id}.{output}``; the suite uses every indicator of KTRDR's registry);
- ``features``: every network input the engine makes, from KTRDR's backtest pipeline
  (``FeatureCache.compute_features`` with the strategy written as a v3 file: fuzzy sets
  by id, ``nn_inputs``, raw indicator inputs), one timeframe at a time;
  ``ktrdr_names`` maps our feature names to KTRDR's ``{tf}_{fuzzy_set}_{membership}`` and
  ``{tf}_{indicator}_raw``;
- ``aligned``: KTRDR's values of the higher-timeframe inputs on the base bars;
- ``models``: outputs of KTRDR networks with fixed weights (:func:`fixed_weights`),
  loaded by KTRDR's ``ModelBundle.load`` and run on KTRDR's features.

Fuzzy sets with a ``price_ratio`` input transform (and the v1/v2 SMA/EMA sets) read
``price / indicator``. KTRDR's v3 fuzzy engine has no input transform (its v2 engine had
one, reading ``reference / indicator``, until cec23917), so for those sets the golden
numbers are KTRDR's membership functions applied to ``price / KTRDR's indicator value``.

Where the engine differs on purpose the test checks the documented rule instead:
SuperTrend (KTRDR's never leaves its NaN seed), ZigZag (KTRDR's marks pivots with
hindsight) and higher timeframes (KTRDR shows a 4-hour bar to the 1-hour bars inside it).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from training_engine.features import compute_features, timeframe_features
from training_engine.fuzzy import membership
from training_engine.indicators import compute_indicator
from training_engine.models import build_model
from training_engine.strategy import FuzzySetSpec, StrategyConfig, load_strategy

from tests.engine.test_ktrdr_golden import golden_series

GOLDEN = Path(__file__).parent / "data" / "ktrdr_golden_features.json"
STRATEGIES = Path(__file__).parent / "ktrdr_strategies"
# KTRDR's SuperTrend seeds its recursion on bar 0, where the ATR is NaN: its trend stays
# NaN and its direction +1 forever. KTRDR's ZigZag puts a pivot's price on its bar only
# once later bars confirm it. The engine's are causal (``training_engine.indicators``).
DIFFERENT_ON_PURPOSE = {"st_10", "st_10_direction", "zz", "st_10_direction_supertrend_dir_up",
                        "zz_pivot_above"}  # fmt: skip


def golden_frames() -> dict[str, pd.DataFrame]:
    """The golden series' hourly bars and the 4-hour bars made from them."""
    hourly = golden_series()
    four_hourly = hourly.resample("4h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return {"1h": hourly, "4h": four_hourly}


@cache
def _golden() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(GOLDEN.read_text())
    return loaded


@cache
def _frames() -> dict[str, pd.DataFrame]:
    return golden_frames()


def _strategy(name: str) -> StrategyConfig:
    return load_strategy(STRATEGIES / f"{name}.yaml")


def _expected(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _sampled(values: pd.Series, timeframe: str) -> np.ndarray:
    return values.to_numpy(np.float64)[_golden()["samples"][timeframe]]


def _assert_same(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=what)


NAMES = sorted(_golden()["strategies"])


# Strategies whose features read context series (``context_data``): KTRDR aligns a context
# series by its raw timestamps (a daily value is seen from midnight, before it is published),
# the engine from when each value became known (docs/engine-data.md), so their context
# features differ on purpose; their indicators and memberships are the registry's, covered
# by the other files' numbers.
CONTEXT_STRATEGIES = {"v3_carry_context"}


def test_the_golden_numbers_cover_every_strategy_file() -> None:
    files = {path.stem for path in STRATEGIES.glob("*.yaml")}
    assert sorted(files - CONTEXT_STRATEGIES) == NAMES
    for name in CONTEXT_STRATEGIES:
        strategy = _strategy(name)
        assert strategy.context_data, f"{name} reads no context series: give it golden numbers"
        covered = {spec.type for other in NAMES for spec in _strategy(other).indicators}
        assert {spec.type for spec in strategy.indicators} <= covered


@pytest.mark.parametrize("name", NAMES)
def test_indicator_outputs_are_ktrdrs(name: str) -> None:
    strategy, golden = _strategy(name), _golden()["strategies"][name]["indicators"]
    for timeframe in strategy.timeframes:
        checked = set()
        for spec in strategy.indicators:
            outputs = compute_indicator(spec, _frames()[timeframe])
            for column in outputs.columns:
                checked.add(column)
                if column in DIFFERENT_ON_PURPOSE:
                    continue
                expected = _expected(golden[timeframe][column])
                _assert_same(
                    _sampled(outputs[column], timeframe), expected, f"{timeframe} {column}"
                )
        assert checked == set(golden[timeframe]), "every KTRDR output has an engine column"


@pytest.mark.parametrize("name", NAMES)
def test_network_inputs_are_ktrdrs(name: str) -> None:
    strategy, golden = _strategy(name), _golden()["strategies"][name]["features"]
    for timeframe in strategy.timeframes:
        ours = timeframe_features(strategy, _frames()[timeframe], timeframe)
        assert set(ours.columns) == set(golden[timeframe]), "the same inputs on both sides"
        for column in ours.columns:
            if column in DIFFERENT_ON_PURPOSE:
                continue
            expected = _expected(golden[timeframe][column])
            _assert_same(_sampled(ours[column], timeframe), expected, f"{timeframe} {column}")


def test_memberships_are_ktrdrs_on_edge_values_but_at_a_trapezoid_shoulder() -> None:
    """Every membership form on values at and around its corners, as KTRDR's pipeline reads.

    KTRDR's pipeline evaluates a trapezoid value by value and answers 0 for ``x <= a`` or
    ``x >= d`` before looking at the plateau, so a shoulder (``a == b`` or ``c == d``) is 0
    exactly at its edge: ``[60, 70, 100, 100]`` gives 0 at 100 (its own array path gives 1).
    The engine keeps the shoulder at 1 there; everywhere else the forms agree.
    """
    golden = _golden()["memberships"]
    x = _expected(golden["x"])
    edges = 0
    for form in golden["forms"]:
        spec = FuzzySetSpec(name="set", type=form["type"], parameters=tuple(form["parameters"]))
        ours, theirs = membership(x, spec), _expected(form["values"])
        a, b, c, d = (form["parameters"] + [None, None])[:4]
        shoulder_edge = (
            np.isin(x, [v for v, w in ((a, b), (d, c)) if v is not None and v == w])
            if form["type"] == "trapezoidal"
            else np.zeros(len(x), dtype=bool)
        )
        _assert_same(ours[~shoulder_edge], theirs[~shoulder_edge], str(form))
        assert (ours[shoulder_edge] == 1.0).all() and (theirs[shoulder_edge] == 0.0).all()
        edges += int(shoulder_edge.sum())
    assert edges == 2, "both shoulder forms are checked at their edge"


def test_price_ratio_inputs_are_the_sets_with_an_input_transform() -> None:
    for name in NAMES:
        strategy = _strategy(name)
        transformed = {
            f"{timeframe}_{reference.replace('.', '_')}_{fuzzy_set.name}"
            for timeframe in strategy.timeframes
            for reference, sets in strategy.fuzzy_sets.items()
            for fuzzy_set in sets
            if fuzzy_set.transform is not None
            and f"{reference.replace('.', '_')}_{fuzzy_set.name}"
            in _golden()["strategies"][name]["features"][timeframe]
        }
        assert transformed == set(_golden()["strategies"][name]["price_ratio"]), name


def test_supertrend_is_causal_where_ktrdrs_never_leaves_its_nan_seed() -> None:
    golden = _golden()["strategies"]["v3_trend_regime"]["indicators"]["1h"]
    assert all(v is None for v in golden["st_10"])
    assert set(golden["st_10_direction"]) == {1.0}
    spec = next(i for i in _strategy("v3_trend_regime").indicators if i.feature_id == "st_10")
    ours = compute_indicator(spec, _frames()["1h"]).iloc[10:]  # the 10-bar ATR warm-up
    assert ours.notna().all().all()
    assert set(ours["st_10_direction"].unique()) == {-1.0, 1.0}
    # The trend line is the final lower band in an up trend and the upper one in a down
    # trend: below the close when up, above it when down.
    close = _frames()["1h"]["close"].iloc[10:]
    up = ours["st_10_direction"] == 1.0
    assert (ours["st_10"][up] < close[up]).all()
    assert (ours["st_10"][~up] > close[~up]).all()


def test_zigzag_is_the_pivot_ktrdr_shows_live_where_ktrdrs_marks_pivots_with_hindsight() -> None:
    """KTRDR's ZigZag puts a price only on the bars that turned out to be pivots.

    Run on the whole series it marks bars whose pivot only later bars confirm (and moves
    a mark when a leg extends). The engine's value on bar t is the last point KTRDR marks
    when it is run on bars 0..t only: what it shows live, with no later bar known.
    """
    golden = _golden()["strategies"]["v3_trend_regime"]
    spec = next(i for i in _strategy("v3_trend_regime").indicators if i.feature_id == "zz")
    ours = compute_indicator(spec, _frames()["1h"])["zz"]
    live = _expected(golden["zigzag_live"]["1h_zz"])
    known = ~np.isnan(live)  # KTRDR's ZigZag refuses fewer than 3 bars
    _assert_same(_sampled(ours, "1h")[known], live[known], "zigzag")
    assert len(set(live[known])) > 3, "the sampled bars see several legs"
    hindsight = _expected(golden["indicators"]["1h"]["zz"])
    assert np.isnan(hindsight).sum() > 0.8 * len(hindsight), "KTRDR's full run marks few bars"
    for bar, price in golden["zigzag_pivots"]["1h_zz"]:
        assert ours.iloc[bar] == pytest.approx(price, rel=1e-12), bar


@pytest.mark.parametrize("name", [n for n in NAMES if "aligned" in _golden()["strategies"][n]])
def test_a_higher_timeframe_bar_is_seen_once_it_has_closed(name: str) -> None:
    """KTRDR forward-fills a 4-hour bar onto the 1-hour bars it contains (by open time).

    The 1-hour bar of 08:00 then reads the 4-hour bar of 08:00-12:00 three hours before
    it closes. The engine shows a 4-hour bar from the 1-hour bar that closes with it
    (11:00): its value on bar i is KTRDR's on bar i - 3.
    """
    strategy, golden = _strategy(name), _golden()["strategies"][name]["aligned"]
    ours = compute_features(strategy, _frames()).reindex(_frames()["1h"].index)
    samples = np.array(_golden()["samples"]["1h"])
    later = samples + 3 < len(ours)
    assert golden, "the strategy reads a higher timeframe"
    for column, values in golden.items():
        theirs = _expected(values)[later]
        seen = ours[column].to_numpy()[samples[later] + 3]
        known = ~np.isnan(seen)  # the engine's warm-up rows (dropped) are NaN here
        assert known.sum() >= 8
        _assert_same(seen[known], theirs[known], column)


def fixed_weights(keys_and_shapes: list[tuple[str, list[int]]]) -> dict[str, torch.Tensor]:
    """The weights the golden models carry: 0.5 sin(0.7 j + k + 1) for element j of tensor k."""
    return {
        key: torch.tensor(
            0.5 * np.sin(0.7 * np.arange(math.prod(shape)) + k + 1), dtype=torch.float32
        ).reshape(shape)
        for k, (key, shape) in enumerate(keys_and_shapes)
    }


def _engine_state(ktrdr_state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, Any]:
    """KTRDR's tensors under the engine's names: the same layers in the same order."""
    ours = model.state_dict()
    assert len(ours) == len(ktrdr_state)
    mapped: dict[str, Any] = {}
    for (our_key, our_tensor), (their_key, their_tensor) in zip(
        ours.items(), ktrdr_state.items(), strict=True
    ):
        assert our_key.rsplit(".", 1)[1] == their_key.rsplit(".", 1)[1], (our_key, their_key)
        assert our_tensor.shape == their_tensor.shape, (our_key, their_key)
        mapped[our_key] = their_tensor
    return mapped


@pytest.mark.parametrize("name", sorted(_golden()["models"]))
def test_the_same_weights_give_ktrdrs_output_for_a_bar(name: str) -> None:
    """KTRDR's network (ModelBundle.load) and the engine's, same weights and inputs.

    Both read the unnormalised inputs here: KTRDR's backtest normalises raw indicator
    inputs only, from ``normalization_params``; a model trained with the engine's
    normalisation needs it carried into what KTRDR loads (the export's job).
    """
    case, strategy = _golden()["models"][name], _strategy(name)
    regression = case["decisions"]["output_format"] == "regression"
    assert strategy.model.type == case["model_config"]["type"]
    lookback = strategy.features.lookback_periods
    assert lookback == (case["model_config"]["architecture"].get("sequence_length") or 1)
    model = build_model(
        strategy.model, len(case["resolved_features"]), lookback, 1 if regression else 3
    )
    model.load_state_dict(_engine_state(fixed_weights(case["state_dict"]), model))
    model.eval()
    names = {v: k for k, v in _golden()["strategies"][name]["ktrdr_names"].items()}
    columns = [names[feature] for feature in case["resolved_features"]]
    features = compute_features(strategy, {"1h": _frames()["1h"]})[columns]
    assert case["outputs"], "KTRDR produced outputs to compare"
    for bar, expected in case["outputs"].items():
        stamp = _frames()["1h"].index[int(bar)]
        window = features.loc[:stamp].iloc[-lookback:]
        assert window.index[-1] == stamp
        with torch.no_grad():
            output = model(torch.tensor(window.to_numpy(), dtype=torch.float32).unsqueeze(0))[0]
        np.testing.assert_allclose(output.numpy(), expected["output"], rtol=1e-5, atol=1e-6)
        if not regression:
            signal = ("BUY", "HOLD", "SELL")[int(output.argmax())]
            assert signal == expected["signal"]
