"""Ceilings on what a request may ask a service to train, checked before a session starts.

A strategy's own types bound each size (``strategy.values``: far beyond any machine). A
service sets lower ceilings of its own (the host's settings ``max_hidden_width``,
``max_hidden_layers``, ``max_lookback``, ``max_parameters``, ``max_epochs``,
``max_batch_size``) and refuses a session past one with a ``StrategyConfigError`` naming
the key, the ceiling and its setting (HTTP 422). The defaults admit every strategy
shipped in ``config/strategies`` and KTRDR's test strategies many times over.

This module is light (no torch): settings import :class:`Ceilings`; the parameter count
(``training_engine.model_size``) is imported when a strategy is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from training_engine.errors import StrategyConfigError

if TYPE_CHECKING:
    from training_engine.strategy import StrategyConfig


# Upper bounds on the sizes any strategy may ask for (its value types refuse more), far
# beyond what a machine trains today; a service's ceilings must lie below them.
MAX_LAYER_WIDTH = 2**20
MAX_LAYER_COUNT = 1024
MAX_LOOKBACK = 2**20
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 2**24
# The JSON Schema keyword by which a bounded field names its ceiling (a Ceilings field).
CEILING_KEY = "x-ceiling"


@dataclass(frozen=True, slots=True)
class Ceilings:
    """The largest sizes a service trains; each field's setting is ``max_<field>``."""

    hidden_width: int = 4096  # units in one hidden layer
    hidden_layers: int = 16  # hidden layers, and stacked recurrent/transformer layers
    lookback: int = 1000  # bars one sample sees
    parameters: int = 50_000_000  # the network's weights and biases
    epochs: int = 10_000
    batch_size: int = 65_536

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


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
    from training_engine.model_size import parameter_count

    parameters = parameter_count(strategy)
    if parameters > ceilings.parameters:
        raise StrategyConfigError(
            "model",
            f"the network has {parameters:,} parameters, above this service's ceiling of "
            f"{ceilings.parameters:,} (setting max_parameters)",
        )
    # Issue 22's estimate of the device memory a session needs joins here: it is checked
    # against the machine with the parameter count above, before the session is stored.
