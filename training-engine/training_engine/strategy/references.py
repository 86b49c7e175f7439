"""What a fuzzy group or an ``nn_inputs`` entry reads: an indicator, and which output.

KTRDR files refer to indicators in several ways, all accepted here:

- the feature id (``rsi_14``), or ``id.output`` for a multi-output one (``adx_14.plus_di``,
  ``macd_12_26_9.signal``, ``bbands_20_2.upper``); a bare id reads the first output. A
  derived id may hold dots itself (``parabolic_sar_0.02_0.02_0.2``, ``bbands_20_2.5.lower``);
- the indicator's type as the file named it (v1/v2 files key fuzzy sets by ``rsi``, ``sma``,
  ``BollingerBands``), or its type and leading parameters (``stochastic_14_3``);
- the column names of KTRDR's older indicator engine (``RSI_14``, ``DI_Plus_14``,
  ``Aroon_14_Up``, ``DC_Upper_20``, ``CMF_Signal_21``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from training_engine.errors import StrategyConfigError
from training_engine.strategy.config import IndicatorSpec
from training_engine.strategy.indicator_table import find_indicator, indicator_types

# KTRDR's older column names: pattern -> (registry type, output; None = first output).
_COLUMN_NAMES: tuple[tuple[re.Pattern[str], str, str | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind, output)
    for pattern, kind, output in (
        (r"RSI_(\d+)", "rsi", None),
        (r"SMA_(\d+)", "sma", None),
        (r"EMA_(\d+)", "ema", None),
        (r"ATR_(\d+)", "atr", None),
        (r"CCI_(\d+)", "cci", None),
        (r"MFI_(\d+)", "mfi", None),
        (r"ROC_(\d+)", "roc", None),
        (r"ADX_(\d+)", "adx", None),
        (r"DI_Plus_(\d+)", "adx", "plus_di"),
        (r"DI_Minus_(\d+)", "adx", "minus_di"),
        (r"Aroon_(\d+)_Up", "aroon", "up"),
        (r"Aroon_(\d+)_Down", "aroon", "down"),
        (r"Aroon_(\d+)_Oscillator", "aroon", "oscillator"),
        (r"CMF_(\d+)", "cmf", None),
        (r"CMF_Signal_(\d+)", "cmf", "signal"),
        (r"CMF_Histogram_(\d+)", "cmf", "histogram"),
        (r"DC_Upper_(\d+)", "donchian_channels", "upper"),
        (r"DC_Middle_(\d+)", "donchian_channels", "middle"),
        (r"DC_Lower_(\d+)", "donchian_channels", "lower"),
        (r"MACD_(\d+)_\d+", "macd", None),
        (r"MACD_signal_(\d+)_\d+_\d+", "macd", "signal"),
        (r"MACD_hist_(\d+)_\d+_\d+", "macd", "histogram"),
        (r"BollingerBands_(\d+)_[\d.]+", "bollinger_bands", None),
        (r"BollingerBandWidth_(\d+)_[\d.]+", "bollinger_band_width", None),
        (r"ZigZag_(\d+)", "zigzag", None),
    )
)


@dataclass(frozen=True, slots=True)
class IndicatorRef:
    """An indicator and one of its outputs (None: the first)."""

    spec: IndicatorSpec
    output: str | None

    @property
    def key(self) -> str:
        """``rsi_14`` for a first output, ``adx_14.plus_di`` for another."""
        return (
            self.spec.feature_id if self.output is None else f"{self.spec.feature_id}.{self.output}"
        )


def _with_output(spec: IndicatorSpec, output: str | None, at: str) -> IndicatorRef:
    outputs = indicator_types()[spec.type].outputs
    if output is None or output == outputs[0]:
        return IndicatorRef(spec, None)
    if output not in outputs:
        raise StrategyConfigError(
            at,
            f"{spec.feature_id} ({spec.type}) has no output '{output}'; "
            f"its outputs are {', '.join(outputs)}",
        )
    return IndicatorRef(spec, output)


def _first_parameter(spec: IndicatorSpec) -> object:
    numbers = [v for v in spec.params.values() if not isinstance(v, bool | str)]
    return numbers[0] if numbers else None


def _by_column_name(reference: str, indicators: tuple[IndicatorSpec, ...]) -> IndicatorRef | None:
    for pattern, kind, output in _COLUMN_NAMES:
        match = pattern.fullmatch(reference)
        if match is None:
            continue
        period = int(match.group(1))
        same = [s for s in indicators if s.type == kind]
        exact = [s for s in same if _first_parameter(s) == period]
        chosen = exact or same
        if len(chosen) == 1:
            return IndicatorRef(chosen[0], output)
    return None


def _by_name(
    reference: str, indicators: tuple[IndicatorSpec, ...], written: Mapping[str, str]
) -> IndicatorSpec | None:
    lowered = reference.lower()
    named = [s for s in indicators if written.get(s.feature_id, "").lower() == lowered]
    if len(named) == 1:
        return named[0]
    head, *rest = lowered.split("_")
    kind = find_indicator(head) or find_indicator(lowered)
    if kind is None:
        return None
    same = [s for s in indicators if s.type == kind.key]
    if len(same) == 1:
        return same[0]
    # KTRDR names stochastic sets stochastic_14_3_3: match on the leading parameters.
    for spec in same:
        own = spec.feature_id.split("_")[1:]
        if rest[: len(own)] == own or own[: len(rest)] == rest:
            return spec
    return None


def find_reference(
    reference: str,
    indicators: tuple[IndicatorSpec, ...],
    written: Mapping[str, str],
    at: str,
) -> IndicatorRef:
    """The indicator output ``reference`` names.

    Args:
        written: feature id -> the type name as the file wrote it.
        at: the dotted key refused when nothing matches.

    Raises:
        StrategyConfigError: no indicator (or no such output) matches.
    """
    ids = {s.feature_id: s for s in indicators}
    if reference in ids:
        return IndicatorRef(ids[reference], None)
    if "." in reference:
        # A derived id holds a dot where a parameter is a float (parabolic_sar_0.02_0.02_0.2,
        # bbands_20_2.5): the output is what follows the longest id the reference starts with.
        owners = [s for s in indicators if reference.startswith(f"{s.feature_id}.")]
        if owners:
            owner = max(owners, key=lambda s: len(s.feature_id))
            return _with_output(owner, reference[len(owner.feature_id) + 1 :], at)
        head, output = reference.rsplit(".", 1)
        named = _by_name(head, indicators, written)
        if named is not None:
            return _with_output(named, output, at)
    else:
        found = _by_column_name(reference, indicators)
        if found is not None:
            return found
        spec = _by_name(reference, indicators, written)
        if spec is not None:
            return IndicatorRef(spec, None)
    raise StrategyConfigError(at, f"no indicator '{reference}'; indicators are {sorted(ids)}")
