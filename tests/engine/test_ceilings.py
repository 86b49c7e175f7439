"""Ceilings: every shipped strategy fits the defaults; a size past one is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_engine.ceiling_check import check_ceilings
from training_engine.ceilings import Ceilings
from training_engine.errors import StrategyConfigError
from training_engine.model_size import feature_count, parameter_count
from training_engine.models import build_model
from training_engine.strategy import load_strategy, with_overrides

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO_ROOT / "config" / "strategies").glob("*.yaml")) + sorted(
    (REPO_ROOT / "tests" / "engine" / "ktrdr_strategies").glob("*.yaml")
)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_strategy_fits_the_default_ceilings(path: Path) -> None:
    strategy = load_strategy(path)
    check_ceilings(strategy, Ceilings())
    # The count on the meta device is the real network's.
    real = build_model(
        strategy.model,
        feature_count(strategy),
        strategy.features.lookback_periods,
        len(strategy.labels.class_names) or 1,
    )
    assert parameter_count(strategy) == sum(p.numel() for p in real.parameters())


def _momentum(**model: object) -> object:
    strategy = load_strategy(REPO_ROOT / "config" / "strategies" / "momentum_mlp.yaml")
    return strategy.model_copy(update={"model": strategy.model.model_copy(update=model)})


@pytest.mark.parametrize(
    ("overrides", "key", "named"),
    [
        (
            {"epochs": 11},
            "config.epochs",
            "11 is above this service's ceiling of 10 (setting max_epochs)",
        ),
        ({"batch_size": 65}, "config.batch_size", "ceiling of 64 (setting max_batch_size)"),
    ],
)
def test_training_sizes_past_a_ceiling_name_the_key_and_the_setting(
    overrides: dict[str, int], key: str, named: str
) -> None:
    base = load_strategy(REPO_ROOT / "config" / "strategies" / "momentum_mlp.yaml")
    strategy = with_overrides(base, training=overrides)
    with pytest.raises(StrategyConfigError) as caught:
        check_ceilings(strategy, Ceilings(epochs=10, batch_size=64), overrides)
    assert caught.value.key == key
    assert named in caught.value.problem


@pytest.mark.parametrize(
    ("model", "key", "setting"),
    [
        ({"hidden_layers": (32, 5000)}, "model.architecture.hidden_layers[1]", "max_hidden_width"),
        ({"hidden_layers": (8,) * 17}, "model.architecture.hidden_layers", "max_hidden_layers"),
        ({"num_layers": 17}, "model.architecture.num_layers", "max_hidden_layers"),
        ({"hidden_layers": (4096,) * 4}, "model", "max_parameters"),
    ],
)
def test_network_past_a_ceiling_is_refused_before_anything_is_allocated(
    model: dict[str, object], key: str, setting: str
) -> None:
    allocated_before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    with pytest.raises(StrategyConfigError) as caught:
        check_ceilings(_momentum(**model), Ceilings())  # type: ignore[arg-type]
    assert caught.value.key == key
    assert setting in caught.value.problem
    if torch.cuda.is_available():
        assert torch.cuda.memory_allocated() == allocated_before


def test_lookback_past_its_ceiling_is_refused() -> None:
    strategy = load_strategy(REPO_ROOT / "config" / "strategies" / "trend_lstm.yaml")
    longer = strategy.model_copy(
        update={"features": strategy.features.model_copy(update={"lookback_periods": 1001})}
    )
    with pytest.raises(StrategyConfigError) as caught:
        check_ceilings(longer, Ceilings())
    assert caught.value.key == "model.features.lookback_periods"
    assert "1,000" in caught.value.problem and "max_lookback" in caught.value.problem
