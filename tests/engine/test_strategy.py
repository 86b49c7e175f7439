"""Strategy files: the examples load, misspelt keys and bad values are named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from training_engine.errors import StrategyConfigError
from training_engine.strategy import load_strategy

from tests.engine.golden.strategy_cases import ktrdr_v3


def _example(strategies_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((strategies_dir / "momentum_mlp.yaml").read_text())
    return data


def test_default_strategy_matches_what_the_services_expect(strategies_dir: Path) -> None:
    strategy = load_strategy(strategies_dir / "momentum_mlp.yaml")
    assert strategy.name == "momentum_mlp"
    assert strategy.symbols == ("AAPL",) and strategy.timeframes == ("1h",)
    assert strategy.model.type == "mlp"
    assert 1 <= strategy.features.lookback_periods <= 3
    assert strategy.training.epochs == 10 and strategy.training.batch_size == 64
    assert "rsi_14" in strategy.fuzzy_sets


def test_examples_cover_multi_symbol_multi_timeframe_and_a_recurrent_model(
    strategies_dir: Path,
) -> None:
    strategies = [load_strategy(p) for p in sorted(strategies_dir.glob("*.yaml"))]
    assert any(len(s.symbols) > 1 and len(s.timeframes) > 1 for s in strategies)
    assert any(s.model.type == "lstm" and s.features.lookback_periods > 1 for s in strategies)


def test_misspelt_key_is_rejected_naming_it(strategies_dir: Path, tmp_path: Path) -> None:
    data = _example(strategies_dir)
    data["model"]["training"]["epocs"] = data["model"]["training"].pop("epochs")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy(path)
    assert caught.value.key == "model.training.epocs"
    assert "epochs" in str(caught.value)


def _set_indicator_typo(data: dict[str, Any]) -> None:
    data["indicators"][0] = {"name": "rsi", "peroid": 14}


def _set_bad_batch_size(data: dict[str, Any]) -> None:
    data["model"]["training"]["batch_size"] = "lots"


def _set_negative_threshold(data: dict[str, Any]) -> None:
    data["training"]["labels"]["zigzag_threshold"] = -0.5


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (_set_indicator_typo, "indicators[0].peroid", "did you mean 'period'"),
        (_set_bad_batch_size, "model.training.batch_size", "expected an integer"),
        (_set_negative_threshold, "training.labels.zigzag_threshold", "expected a number"),
    ],
)
def test_bad_value_or_parameter_is_rejected_naming_the_key_and_what_was_expected(
    strategies_dir: Path, change: Callable[[dict[str, Any]], None], key: str, expected: str
) -> None:
    data = _example(strategies_dir)
    change(data)
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy(data)
    assert caught.value.key == key
    assert expected in str(caught.value)


def test_v3_fuzzy_groups_point_at_their_indicator_and_keep_their_names() -> None:
    low = {"type": "triangular", "parameters": [0, 15, 25]}
    strategy = load_strategy(
        ktrdr_v3(
            {"adx_14": {"type": "adx", "period": 14}},
            {
                "adx_14": {"indicator": "adx_14", "weak": low},
                "trend_strength": {"indicator": "adx_14", "low": low},
            },
        )
    )
    assert [s.name for s in strategy.fuzzy_sets["adx_14"]] == ["weak", "trend_strength_low"]
    assert "nn_inputs" not in strategy.ignored_keys and strategy.nn_inputs


def test_fuzzy_group_on_a_secondary_output_is_refused_naming_it() -> None:
    group = {"indicator": "adx_14.di_plus", "low": {"type": "triangular", "parameters": [0, 1, 2]}}
    with pytest.raises(StrategyConfigError) as raised:
        load_strategy(ktrdr_v3({"adx_14": {"type": "adx", "period": 14}}, {"di_plus": group}))
    assert raised.value.key == "fuzzy_sets.di_plus.indicator"


def test_ktrdr_parameter_spellings_are_understood() -> None:
    strategy = load_strategy(
        ktrdr_v3(
            {
                "bbands_20_2": {"type": "bbands", "period": 20, "multiplier": 2.5},
                "stoch_14_3_3": {"type": "stoch", "k_period": 14, "d_period": 3, "smooth_k": 3},
            },
            {},
        )
    )
    bbands, stoch = strategy.indicators
    assert bbands.type == "bollinger_bands" and bbands.params["multiplier"] == 2.5
    assert stoch.params["smooth_k"] == 3
    assert not any("multiplier" in key or "smooth_k" in key for key in strategy.ignored_keys)


def test_descriptions_are_accepted_silently_and_unused_sections_are_reported(
    strategies_dir: Path,
) -> None:
    for path in sorted(strategies_dir.glob("*.yaml")):
        assert load_strategy(path).ignored_keys == (), path.name
    data = _example(strategies_dir)
    decisions = {"output_format": "classification", "cost_model": {}}
    data.update(description="why", version="3.0", decisions=decisions)
    assert load_strategy(data).ignored_keys == ("decisions.cost_model",)


def test_a_strategy_file_that_is_no_yaml_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nsecret-line: [unclosed: token\n")
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy(path)
    message = str(caught.value)
    assert "is not valid YAML" in message and "(line " in message
    assert "secret-line" not in message and "unclosed" not in message
