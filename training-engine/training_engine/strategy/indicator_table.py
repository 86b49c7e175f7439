"""The strategy side's one table of indicators: types, parameters, defaults and spellings.

Kept as plain data (``IndicatorParameters`` per type) so it can be replaced by a registry
exported from ``training_engine.indicators`` without touching the strategy models: only
``INDICATORS`` and ``INDICATOR_ALIASES`` are read elsewhere in this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IndicatorParameters:
    """What one indicator type takes: parameter names in feature-id order, and defaults."""

    names: tuple[str, ...]
    defaults: Mapping[str, int | float] = field(default_factory=dict)
    real_valued: frozenset[str] = frozenset()  # the rest are integers >= 1


INDICATORS: dict[str, IndicatorParameters] = {
    "sma": IndicatorParameters(("period",), {"period": 20}),
    "ema": IndicatorParameters(("period",), {"period": 20}),
    "rsi": IndicatorParameters(("period",), {"period": 14}),
    "macd": IndicatorParameters(
        ("fast_period", "slow_period", "signal_period"),
        {"fast_period": 12, "slow_period": 26, "signal_period": 9},
    ),
    "bbands": IndicatorParameters(
        ("period", "std_dev"), {"period": 20, "std_dev": 2.0}, frozenset({"std_dev"})
    ),
    "atr": IndicatorParameters(("period",), {"period": 14}),
    "stoch": IndicatorParameters(
        ("k_period", "d_period", "smooth_k"), {"k_period": 14, "d_period": 3, "smooth_k": 1}
    ),
    "adx": IndicatorParameters(("period",), {"period": 14}),
    "roc": IndicatorParameters(("period",), {"period": 10}),
    "momentum": IndicatorParameters(("period",), {"period": 10}),
    "williams_r": IndicatorParameters(("period",), {"period": 14}),
    "cci": IndicatorParameters(("period",), {"period": 20}),
    "mfi": IndicatorParameters(("period",), {"period": 14}),
    "obv": IndicatorParameters(()),
}
# Views kept for the indicator tests: type -> parameter names, type -> defaults.
SUPPORTED_INDICATORS: dict[str, tuple[str, ...]] = {k: v.names for k, v in INDICATORS.items()}
INDICATOR_DEFAULTS: dict[str, dict[str, int | float]] = {
    k: dict(v.defaults) for k, v in INDICATORS.items()
}
INDICATOR_ALIASES = {
    "williamsr": "williams_r",
    "williams": "williams_r",
    "stochastic": "stoch",
    "bollinger_bands": "bbands",
    "bollingerbands": "bbands",
}
# Parameter names KTRDR files also use for the same thing (Bollinger bands only).
PARAMETER_ALIASES = {"bbands": {"multiplier": "std_dev", "num_std": "std_dev"}}
# Optional parameters left out of a derived feature id while they keep their default.
_ID_OMITTED_DEFAULTS = {"smooth_k": 1}


def indicator_type(name: str) -> str:
    """The table's name for a type as a strategy spells it (``WilliamsR`` -> ``williams_r``)."""
    kind = name.strip().lower()
    return INDICATOR_ALIASES.get(kind, kind)


def derived_feature_id(kind: str, params: Mapping[str, float]) -> str:
    """``rsi_14``, ``macd_12_26_9``: the type and its parameters in table order."""
    parts = [kind] + [
        f"{params[p]:g}"
        for p in INDICATORS[kind].names
        if p in params and _ID_OMITTED_DEFAULTS.get(p) != params[p]
    ]
    return "_".join(parts)
