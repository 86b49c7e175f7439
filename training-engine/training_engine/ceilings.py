"""Ceilings on what a request may ask a service to train, checked before a session starts.

A strategy's own types bound each size (``strategy.values``: far beyond any machine). A
service sets lower ceilings of its own (the host's settings ``max_hidden_width``,
``max_hidden_layers``, ``max_lookback``, ``max_parameters``, ``max_epochs``,
``max_batch_size``) and refuses a session past one with a ``StrategyConfigError`` naming
the key, the ceiling and its setting (HTTP 422). The defaults admit every strategy
shipped in ``config/strategies`` and KTRDR's test strategies many times over.

This module is light (no torch, no strategy): settings and the strategy's value types
import it; :mod:`training_engine.ceiling_check` checks a strategy against a service's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
