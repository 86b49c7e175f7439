"""The size of the network a strategy trains, known before any market data is read."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from training_engine.errors import StrategyConfigError
from training_engine.features import timeframe_features
from training_engine.models import build_model
from training_engine.sample_data import generate_hourly
from training_engine.strategy import StrategyConfig

# Bars of synthetic prices the feature code runs on to count its columns (their values
# do not matter; a few keep the count cheap whatever the indicators' periods).
COUNTING_BARS = 64


class _ShapesOnly(TorchFunctionMode):
    """Skips ``torch.nn.init``: on the meta device some initialisers (``normal_``) load
    PyTorch's compiler first, seconds of work for values nobody reads here."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else (kwargs or {})["tensor"]
        return func(*args, **(kwargs or {}))


def feature_count(strategy: StrategyConfig) -> int:
    """Network inputs per bar: the columns the real feature code makes, on every timeframe.

    Raises:
        StrategyConfigError: a timeframe has no network input, or an indicator cannot be
            computed with its parameters (as training would find).
    """
    frame = generate_hourly("COUNT", COUNTING_BARS, seed=0)
    # Indicators reading context data (a data_source) count the same columns on any bars.
    sources = {spec.data_source: frame for spec in strategy.indicators if spec.data_source}
    try:
        return sum(
            timeframe_features(strategy, frame, timeframe, sources).shape[1]
            for timeframe in strategy.timeframes
        )
    except (ValueError, ArithmeticError, IndexError) as exc:  # an indicator's own refusal
        raise StrategyConfigError("indicators", f"cannot be computed: {exc}") from exc


def parameter_count(strategy: StrategyConfig) -> int:
    """The network's weights and biases, built on PyTorch's ``meta`` device (no memory)."""
    n_classes = len(strategy.labels.class_names) or 1
    n_features = feature_count(strategy)
    with torch.device("meta"), _ShapesOnly():
        model = build_model(
            strategy.model, n_features, strategy.features.lookback_periods, n_classes
        )
    return sum(parameter.numel() for parameter in model.parameters())
