"""A strategy checked against a service's :class:`~training_engine.ceilings.Ceilings`
before a session starts (the parameter count builds the network on the meta device).

Issue 22's device-memory estimate (``training_engine.device_memory``) is checked by the
trainer once the data is loaded; a check of it before a session starts belongs next to
:func:`check_ceilings`, which sees the same resolved strategy and answers the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training_engine.ceilings import Ceilings
from training_engine.errors import StrategyConfigError
from training_engine.model_size import parameter_count
from training_engine.strategy import StrategyConfig


def _refuse(key: str, value: int, ceilings: Ceilings, name: str) -> StrategyConfigError:
    limit = getattr(ceilings, name)
    return StrategyConfigError(
        key, f"{value:,} is above this service's ceiling of {limit:,} (setting max_{name})"
    )


def check_ceilings(
    strategy: StrategyConfig, ceilings: Ceilings, overrides: Mapping[str, Any] | None = None
) -> None:
    """Refuse a strategy that asks for more than ``ceilings`` allow.

    Args:
        strategy: the resolved strategy, overrides applied.
        ceilings: the service's.
        overrides: the request's ``config``: a value from there is named ``config.<key>``.

    Raises:
        StrategyConfigError: naming the first key past its ceiling.
    """
    given = overrides or {}
    training = strategy.training
    for name in ("epochs", "batch_size"):
        value = getattr(training, name)
        if value > getattr(ceilings, name):
            key = f"config.{name}" if name in given else f"model.training.{name}"
            raise _refuse(key, value, ceilings, name)
    lookback = strategy.features.lookback_periods
    if lookback > ceilings.lookback:
        raise _refuse("model.features.lookback_periods", lookback, ceilings, "lookback")
    model = strategy.model
    if len(model.hidden_layers) > ceilings.hidden_layers:
        key = "model.architecture.hidden_layers"
        raise _refuse(key, len(model.hidden_layers), ceilings, "hidden_layers")
    if model.num_layers > ceilings.hidden_layers:
        key = "model.architecture.num_layers"
        raise _refuse(key, model.num_layers, ceilings, "hidden_layers")
    for index, width in enumerate(model.hidden_layers):
        if width > ceilings.hidden_width:
            key = f"model.architecture.hidden_layers[{index}]"
            raise _refuse(key, width, ceilings, "hidden_width")
    parameters = parameter_count(strategy)
    if parameters > ceilings.parameters:
        raise StrategyConfigError(
            "model",
            f"the network has {parameters:,} parameters, above this service's ceiling of "
            f"{ceilings.parameters:,} (setting max_parameters)",
        )
    # Issue 22's estimate of the device memory a session needs joins here: it is checked
    # against the machine with the parameter count above, before the session is stored.
