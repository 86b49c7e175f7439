"""Feature ids holding a dot (``parabolic_sar_0.02_0.02_0.2``, ``zigzag_0.05``) work as keys.

KTRDR derives an indicator's id from its parameters, so a float parameter puts a dot in
it; ``id.output`` names another output of a multi-output one. A fuzzy group or raw input
keyed by such an id trains, and a key that names no output is refused naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from training_engine.cli import EXIT_BAD_INPUT, main
from training_engine.data import load_ohlcv
from training_engine.errors import StrategyConfigError
from training_engine.features import compute_features
from training_engine.fuzzy import membership
from training_engine.indicators import compute_indicator
from training_engine.strategy import parse_strategy

LOW = {"type": "triangular", "parameters": [0.0, 1.0, 2.0]}


def _strategy(indicators: list[dict[str, Any]], fuzzy_sets: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "dotted",
        "training_data": {"symbols": ["EURUSD"], "timeframes": ["1h"]},
        "indicators": indicators,
        "fuzzy_sets": fuzzy_sets,
        "model": {"training": {"epochs": 1, "device": "cpu", "batch_size": 256}},
    }


def test_fuzzy_sets_keyed_by_dotted_derived_ids_train(
    sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _strategy(
        [{"name": "parabolic_sar"}, {"name": "zigzag", "threshold": 0.05}],
        {"parabolic_sar_0.02_0.02_0.2": {"low": LOW}, "zigzag_0.05": {"low": LOW}},
    )
    path = tmp_path / "dotted.yaml"
    path.write_text(yaml.safe_dump(document))
    argv = ["train", str(path), "--data-dir", str(sample_data_dir)]
    code = main([*argv, "--models-dir", str(tmp_path / "models"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "completed 1/1 epochs" in capsys.readouterr().out


def test_a_set_on_another_output_of_a_dotted_id_reads_that_output(sample_data_dir: Path) -> None:
    strategy = parse_strategy(
        _strategy(
            [{"name": "bbands", "period": 20, "multiplier": 2.5}],
            {"bbands_20_2.5.lower": {"near": {"type": "gaussian", "parameters": [1.1, 0.05]}}},
        )
    )
    frame = load_ohlcv(sample_data_dir, "EURUSD", "1h")
    features = compute_features(strategy, {"1h": frame})
    assert list(features.columns) == ["1h_bbands_20_2_5_lower_near"]
    lower = compute_indicator(strategy.indicators[0], frame)["bbands_20_2.5_lower"]
    (fuzzy_set,) = strategy.fuzzy_sets["bbands_20_2.5.lower"]
    expected = membership(lower.to_numpy(), fuzzy_set)[-len(features) :]
    np.testing.assert_allclose(features.iloc[:, 0].to_numpy(), expected)


def test_a_raw_input_with_a_dotted_id_trains_into_its_column(sample_data_dir: Path) -> None:
    document = _strategy([{"name": "zigzag", "threshold": 0.05}], {"zigzag_0.05": {"low": LOW}})
    document["nn_inputs"] = [{"raw_indicator": "zigzag_0.05", "timeframes": "all"}]
    strategy = parse_strategy(document)
    frame = load_ohlcv(sample_data_dir, "EURUSD", "1h")
    features = compute_features(strategy, {"1h": frame})
    assert list(features.columns) == ["1h_zigzag_0_05"]
    raw = compute_indicator(strategy.indicators[0], frame)["zigzag_0.05"]
    np.testing.assert_allclose(features.iloc[:, 0].to_numpy(), raw.to_numpy()[-len(features) :])


def test_a_dotted_key_naming_no_output_is_refused_naming_the_key() -> None:
    document = _strategy(
        [{"name": "bbands", "period": 20, "multiplier": 2.5}],
        {"bbands_20_2.5.lowest": {"low": LOW}},
    )
    with pytest.raises(StrategyConfigError) as caught:
        parse_strategy(document)
    assert caught.value.key == "fuzzy_sets.bbands_20_2.5.lowest"
    assert "no output 'lowest'" in caught.value.problem


def test_the_cli_refuses_a_dotted_key_naming_no_output_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _strategy([{"name": "zigzag", "threshold": 0.05}], {"zigzag_0.05.peak": {"x": LOW}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    code = main(["train", str(path), "--data-dir", str(tmp_path), "--models-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "fuzzy_sets.zigzag_0.05.peak" in err and "Traceback" not in err
