"""The model registry: every architecture maps windows to class logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from training_engine.errors import StrategyConfigError
from training_engine.models import ACTIVATION_MODULES, TransformerClassifier, build_model
from training_engine.strategy import ModelConfig
from training_engine.strategy.names import ACTIVATIONS, MODEL_TYPES


@pytest.mark.parametrize("kind", MODEL_TYPES)
def test_every_model_type_maps_windows_to_three_logits(kind: str) -> None:
    config = ModelConfig(type=kind, hidden_layers=(16, 8), num_layers=2, num_heads=4)
    model = build_model(config, n_features=7, lookback=5)
    logits = model(torch.randn(4, 5, 7))
    assert logits.shape == (4, 3)
    logits.sum().backward()  # gradients reach every parameter
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_a_strategy_may_name_is_in_the_network(activation: str) -> None:
    model = build_model(ModelConfig(activation=activation), n_features=2, lookback=1)
    assert type(ACTIVATION_MODULES[activation]()) in {type(m) for m in model.modules()}


def test_the_registry_builds_no_activation_a_strategy_cannot_name() -> None:
    assert set(ACTIVATION_MODULES) == set(ACTIVATIONS)


def test_mlp_layers_follow_hidden_layers_and_skip_dropout_at_zero() -> None:
    config = ModelConfig(type="mlp", hidden_layers=(32, 16), dropout=0.0, activation="tanh")
    model = build_model(config, n_features=4, lookback=3)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 32), (32, 16), (16, 3)]
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert any(isinstance(m, nn.Tanh) for m in model.modules())


def test_transformer_width_is_rounded_up_to_a_multiple_of_heads() -> None:
    config = ModelConfig(type="transformer", hidden_layers=(10,), num_heads=4)
    model = build_model(config, n_features=3, lookback=6)
    assert isinstance(model, TransformerClassifier)
    assert model.embed.out_features == 12
    assert model.position.shape == (1, 6, 12)


def test_unknown_model_type_names_the_key() -> None:
    with pytest.raises(StrategyConfigError, match=r"model\.type"):
        build_model(ModelConfig(type="cnn"), n_features=3, lookback=2)
