"""The strategy side's view of KTRDR's indicator registry (``training_engine.indicators``).

Every indicator KTRDR registers is accepted by any of the names KTRDR accepts (class
name, canonical name, aliases; any case) and by the engine's earlier short names
(``bbands``, ``stoch``, ``williams``). Parameters and defaults are KTRDR's, read from
the registry's function signatures. The registry imports nothing of this package; it is
imported when first needed, since it loads pandas (``--help`` answers without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

# The engine's earlier short names, and spellings KTRDR's older factory took.
_EXTRA_NAMES = {
    "bbands": "bollinger_bands",
    "stoch": "stochastic",
    "williams": "williams_r",
    "averagedirectionalindex": "adx",
    "parabolic_sar": "parabolic_sar",
}
# Parameter names earlier files use for KTRDR's (Bollinger bands: std_dev for multiplier).
PARAMETER_ALIASES = {
    "bollinger_bands": {"std_dev": "multiplier", "num_std": "multiplier"},
    "bollinger_band_width": {"std_dev": "multiplier", "num_std": "multiplier"},
}
# Derived feature ids start with the registry key, or with the engine's earlier short name.
_ID_PREFIX = {"bollinger_bands": "bbands", "stochastic": "stoch"}
# Integer parameters that may be 0 (VWAP: 0 means cumulative).
ZERO_ALLOWED = {("vwap", "period")}


@dataclass(frozen=True, slots=True)
class IndicatorType:
    """One registry entry as the strategy sees it."""

    key: str  # the registry's snake-case name (``bollinger_bands``)
    defaults: Mapping[str, object]  # parameter -> KTRDR's default, in signature order
    outputs: tuple[str, ...]  # output names; the first is what a bare reference reads

    @property
    def names(self) -> tuple[str, ...]:
        """Parameters that take numbers or switches (``source`` is a field of its own)."""
        return tuple(name for name in self.defaults if name != "source")

    @property
    def takes_source(self) -> bool:
        return "source" in self.defaults


@cache
def indicator_types() -> dict[str, IndicatorType]:
    """Registry key -> its entry (read from ``training_engine.indicators`` once)."""
    from training_engine.indicators import KTRDR_INDICATORS

    return {
        key: IndicatorType(key, entry.defaults, entry.outputs)
        for key, entry in KTRDR_INDICATORS.items()
    }


def find_indicator(name: str) -> IndicatorType | None:
    """The entry a strategy's type name means (any case, class names too), or None."""
    from training_engine.indicators import KTRDR_INDICATORS, find_ktrdr_indicator

    text = name.strip().lower()
    text = _EXTRA_NAMES.get(text, text)
    found = find_ktrdr_indicator(text)
    if found is None and text.endswith("indicator"):
        found = find_ktrdr_indicator(text.removesuffix("indicator"))
    if found is None:
        return None
    key = next(k for k, entry in KTRDR_INDICATORS.items() if entry is found)
    return indicator_types()[key]


def supported_names() -> list[str]:
    """The registry's names, for error messages."""
    return sorted(indicator_types())


def derived_feature_id(kind: IndicatorType, params: Mapping[str, object]) -> str:
    """``rsi_14``, ``macd_12_26_9``: the type and its numeric parameters in KTRDR's order."""
    parts = [_ID_PREFIX.get(kind.key, kind.key)] + [
        f"{params[p]:g}"
        for p in kind.names
        if isinstance(params.get(p), int | float) and not isinstance(params.get(p), bool)
    ]
    return "_".join(parts)
