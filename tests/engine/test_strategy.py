"""Strategy files: the examples load, misspelt keys and bad values are named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from training_engine.errors import StrategyConfigError
from training_engine.strategy import load_strategy


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
