"""The model registry: every network takes ``[batch, lookback, features]`` and returns logits.

``build_model`` is the only way the engine makes a network, so a saved artifact can be
rebuilt from its ``ModelConfig`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from training_engine.errors import StrategyConfigError
from training_engine.strategy import ModelConfig
from training_engine.strategy.names import ACTIVATIONS, MODEL_TYPES

# Each name of strategy.names.ACTIVATIONS, the names strategies are validated against.
ACTIVATION_MODULES: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATION_MODULES:
        raise StrategyConfigError(
            "model.architecture.activation",
            f"expected one of {', '.join(ACTIVATIONS)}, got {name!r}",
        )
    return ACTIVATION_MODULES[name]()


class MLPClassifier(nn.Module):
    """Flattens the lookback window and runs it through fully connected layers."""

    def __init__(self, config: ModelConfig, n_features: int, lookback: int, n_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_features * lookback
        for size in config.hidden_layers:
            layers += [nn.Linear(width, size), _activation(config.activation)]
            if config.dropout > 0:
                # No Dropout module at p=0: it would still cost a kernel per batch.
                layers.append(nn.Dropout(config.dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class RecurrentClassifier(nn.Module):
    """An LSTM or GRU over the window; the last step's output feeds a linear head."""

    def __init__(
        self,
        config: ModelConfig,
        n_features: int,
        n_classes: int,
        cell: type[nn.LSTM] | type[nn.GRU],
    ) -> None:
        super().__init__()
        hidden = config.hidden_layers[0]
        self.rnn = cell(
            input_size=n_features,
            hidden_size=hidden,
            num_layers=config.num_layers,
            batch_first=True,
            # torch only applies dropout between stacked layers.
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        logits: torch.Tensor = self.head(self.dropout(out[:, -1]))
        return logits


class TransformerClassifier(nn.Module):
    """A transformer encoder over the lookback window with a learned positional embedding."""

    def __init__(
        self,
        config: ModelConfig,
        n_features: int,
        lookback: int,
        n_classes: int,
        pool: str = "mean",
    ) -> None:
        super().__init__()
        heads = config.num_heads
        # d_model must divide evenly into heads: round the requested width up.
        d_model = max(heads, -(-config.hidden_layers[0] // heads) * heads)
        feedforward = config.hidden_layers[1] if len(config.hidden_layers) > 1 else 2 * d_model
        self.pool = pool
        self.embed = nn.Linear(n_features, d_model)
        self.position = nn.Parameter(torch.zeros(1, lookback, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=d_model,
            nhead=heads,
            dim_feedforward=feedforward,
            dropout=config.dropout,
            activation="relu" if config.activation == "relu" else "gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=config.num_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.position)
        pooled = h.mean(dim=1) if self.pool == "mean" else h[:, -1]
        logits: torch.Tensor = self.head(self.norm(pooled))
        return logits


def build_model(
    config: ModelConfig, n_features: int, lookback: int, n_classes: int = 3
) -> nn.Module:
    """Build the network a strategy asks for.

    Args:
        config: ``model`` section of the strategy (type, hidden_layers, activation, ...).
        n_features: features per bar.
        lookback: bars per input window.
        n_classes: output classes (BUY, HOLD, SELL).

    Returns:
        A module mapping ``[batch, lookback, n_features]`` to logits ``[batch, n_classes]``.

    Raises:
        StrategyConfigError: unknown model type or unusable sizes.
    """
    if n_features < 1 or lookback < 1:
        raise StrategyConfigError(
            "model.features", f"need at least one feature and one bar, got {n_features}x{lookback}"
        )
    if config.type == "mlp":
        return MLPClassifier(config, n_features, lookback, n_classes)
    if config.type == "lstm":
        return RecurrentClassifier(config, n_features, n_classes, nn.LSTM)
    if config.type == "gru":
        return RecurrentClassifier(config, n_features, n_classes, nn.GRU)
    if config.type == "transformer":
        return TransformerClassifier(config, n_features, lookback, n_classes)
    raise StrategyConfigError(
        "model.type", f"expected one of {', '.join(MODEL_TYPES)}, got {config.type!r}"
    )


class SampleBatches(Protocol):
    """Samples sliced into ``[batch, lookback, features]`` tensors: a tensor or gathered windows."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def device(self) -> torch.device: ...

    def __getitem__(self, index: slice, /) -> torch.Tensor: ...


@torch.no_grad()
def batched_logits(model: nn.Module, x: SampleBatches, batch_size: int = 4096) -> torch.Tensor:
    """Logits for ``x`` in eval mode, in chunks so large sets (and their windows) fit in memory.

    The caller's train/eval mode is restored afterwards; eval mode draws no random
    numbers, so inference never changes what a training run does next.
    """
    was_training = model.training
    model.eval()
    try:
        parts = [model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    if not parts:
        return torch.empty(0, 0, device=x.device)
    return torch.cat(parts).float()
