"""What metadata_v3.json says of a strategy's inputs: KTRDR's names, memberships, context data.

KTRDR's own names of the golden strategies' inputs (its ``FeatureResolver`` run on them,
``data/ktrdr_golden_features.json``) and its memberships on edge values are the reference.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from training_engine.features import compute_features
from training_engine.fuzzy import membership
from training_engine.ktrdr_inputs import KtrdrInputs, ktrdr_inputs
from training_engine.ktrdr_metadata import context_source_ids, metadata_v3_file
from training_engine.strategy import FuzzySetSpec, StrategyConfig, parse_strategy

from tests.engine.ktrdr_bundle import membership_value
from tests.engine.synthetic import make_dataset
from tests.engine.test_ktrdr_golden_features import NAMES, _golden, _strategy, golden_frames


def _v3(indicators: dict[str, Any], fuzzy_sets: dict[str, Any], **more: Any) -> StrategyConfig:
    return parse_strategy(
        {
            "name": "edges",
            "version": "3.0",
            "training_data": {"symbols": ["AAPL"], "timeframes": ["1h"]},
            "indicators": indicators,
            "fuzzy_sets": fuzzy_sets,
            **more,
        }
    )


def _inputs_of(strategy: StrategyConfig) -> list[str]:
    """The engine's input names, computed on the golden bars."""
    frames = {tf: golden_frames()[tf] for tf in strategy.timeframes}
    return list(compute_features(strategy, frames).columns)


# v1_lookahead_move reads only price / SMA, which KTRDR's v3 pipeline did not name.
@pytest.mark.parametrize("name", [n for n in NAMES if _golden()["strategies"][n]["ktrdr_names"]])
def test_inputs_get_the_names_ktrdrs_feature_resolver_gives_them(name: str) -> None:
    strategy = _strategy(name)
    features = _inputs_of(strategy)
    inputs = ktrdr_inputs(strategy, features)
    theirs = _golden()["strategies"][name]["ktrdr_names"]

    assert len(inputs.names) == len(features)
    named = dict(zip(features, inputs.names, strict=True))
    assert {ours: named[ours] for ours in theirs} == theirs


def test_ktrdrs_membership_evaluation_as_the_tests_write_it_gives_ktrdrs_numbers() -> None:
    golden = _golden()["memberships"]
    x = [np.nan if v is None else v for v in golden["x"]]
    for form in golden["forms"]:
        theirs = [np.nan if v is None else v for v in form["values"]]
        ours = [membership_value(form["type"], form["parameters"], v) for v in x]
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, equal_nan=True, err_msg=str(form))


def test_exported_memberships_give_the_engines_values_at_every_edge_in_ktrdrs_pipeline() -> None:
    """Trapezoid shoulders are 0 at their edge in KTRDR's pipeline: the export moves them."""
    golden = _golden()["memberships"]
    x = np.array([np.nan if v is None else v for v in golden["x"]])
    sets = {f"f{i}": {"type": f["type"], "parameters": f["parameters"]} for i, f in
            enumerate(golden["forms"])}  # fmt: skip
    strategy = _v3({"rsi_14": {"type": "rsi"}}, {"edges": {"indicator": "rsi_14", **sets}})
    exported = ktrdr_inputs(strategy, _inputs_of(strategy)).fuzzy_sets["edges"]

    for key, form in sets.items():
        kind, parameters = exported[key]["type"], exported[key]["parameters"]
        spec = FuzzySetSpec(name=key, type=form["type"], parameters=tuple(form["parameters"]))
        theirs = [membership_value(kind, parameters, v) for v in x]
        np.testing.assert_allclose(theirs, membership(x, spec), rtol=1e-12, equal_nan=True)


def test_a_price_ratio_on_a_moving_average_is_ktrdrs_distance_from_it() -> None:
    strategy = _v3(
        {"ema_20": {"type": "ema", "period": 20}},
        {"trend": {"indicator": "ema_20", "input_transform": {"type": "price_ratio"},
                   "up": [1.0, 1.02, 1.1], "flat": {"type": "gaussian", "parameters": [1, 0.01]}}},
    )  # fmt: skip
    inputs = ktrdr_inputs(strategy, _inputs_of(strategy))

    assert inputs.problems == []
    assert inputs.indicators == {
        "ema_20_distance": {"type": "distancefromma", "period": 20, "ma_type": "EMA",
                            "source": "close"}
    }  # fmt: skip
    group = inputs.fuzzy_sets["trend"]
    assert group["indicator"] == "ema_20_distance"
    np.testing.assert_allclose(group["up"]["parameters"], [0.0, 2.0, 10.0], atol=1e-12)
    np.testing.assert_allclose(group["flat"]["parameters"], [0.0, 1.0], atol=1e-12)
    assert inputs.names == ["1h_trend_up", "1h_trend_flat"]


def test_indicator_ids_with_a_dot_are_written_without_it_and_context_data_is_carried() -> None:
    """KTRDR splits a reference at its first dot; ``data_source`` and ``context_data`` pass."""
    strategy = _v3(
        {"psar": {"type": "parabolicsar", "acceleration": 0.02}, "rsi_gbp": {"type": "rsi"}},
        {"sar": {"indicator": "psar", "high": [0, 1, 2]},
         "gbp": {"indicator": "rsi_gbp", "low": [0, 30, 50]}},
        nn_inputs=[{"fuzzy_set": "sar", "timeframes": "all"},
                   {"fuzzy_set": "gbp", "timeframes": "all"},
                   {"raw_indicator": "rsi_gbp", "timeframes": ["1h"]}],
    )  # fmt: skip
    dotted = strategy.model_copy(
        update={"indicators": (strategy.indicators[0].model_copy(
            update={"feature_id": "psar_0.02"}), strategy.indicators[1])}
    )  # fmt: skip
    fuzzy = {"psar_0.02": dotted.fuzzy_sets["psar"], "rsi_gbp": dotted.fuzzy_sets["rsi_gbp"]}
    raw = copy.deepcopy(dict(strategy.raw))
    raw["indicators"]["rsi_gbp"]["data_source"] = "GBPUSD"
    raw["context_data"] = [
        {"provider": "ib", "symbol": "GBPUSD", "timeframe": "1h"},
        {"provider": "fred", "series": ["DGS2", "IRLTLT01DEM156N"]},
        {"provider": "cftc_cot", "report": "EUR"},
    ]
    dotted = dotted.model_copy(update={"fuzzy_sets": fuzzy, "raw": raw})
    # The engine's names (its feature computation of dotted ids is another issue's fix).
    inputs = ktrdr_inputs(dotted, ["1h_psar_0_02_sar_high", "1h_rsi_gbp_gbp_low", "1h_rsi_gbp"])
    metadata = metadata_v3_file(dotted, make_dataset(lookback=1), inputs, "m", {})

    assert inputs.problems == []
    assert inputs.fuzzy_sets["sar"]["indicator"] == "psar_0_02"
    assert inputs.indicators["rsi_gbp"]["data_source"] == "GBPUSD"
    assert inputs.names == ["1h_sar_high", "1h_gbp_low", "1h_rsi_gbp_raw"]
    assert metadata["context_data_config"] == raw["context_data"]
    assert metadata["context_source_ids"] == [
        "GBPUSD",
        "fred_DGS2",
        "fred_IRLTLT01DEM156N",
        "yield_spread_DGS2_IRLTLT01DEM156N",
        "cot_EUR_net_pos",
        "cot_EUR_net_pct",
    ]
    assert context_source_ids([{"provider": "fred", "series": "DGS10"}]) == ["fred_DGS10"]


def test_inputs_ktrdr_cannot_compute_are_named_as_the_reason() -> None:
    strategy = _v3(
        {"st": {"type": "supertrend"}, "wma_20": {"type": "wma"}},
        {"dir": {"indicator": "st.direction", "up": [0, 1, 1.01]},
         "wma": {"indicator": "wma_20", "input_transform": {"type": "price_ratio"},
                 "near": [0.98, 1.0, 1.02]}},
    )  # fmt: skip
    inputs: KtrdrInputs = ktrdr_inputs(strategy, [*_inputs_of(strategy), "1h_x"])

    assert inputs.problems == [
        "st: KTRDR's SuperTrend never leaves its NaN seed",
        "fuzzy set 'wma' reads close / wma_20: KTRDR has no such input (of price ratios, "
        "only price / SMA or EMA maps to its distancefromma)",
        "inputs KTRDR does not compute: 1h_x",
    ]
