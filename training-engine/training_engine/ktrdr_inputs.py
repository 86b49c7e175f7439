"""The network inputs as KTRDR's backtester computes them: its v3 indicators, fuzzy sets, nn_inputs.

KTRDR (HEAD) rebuilds a model's inputs from ``metadata_v3.json``: every indicator it names is
computed on each timeframe's bars, each fuzzy set reads one indicator output raw, and
``resolved_features`` gives the order of the network's inputs. This module says how a
resolved strategy's inputs (``PreparedDataset.feature_names``, in our order) are written so
that KTRDR computes the same values from the same bars, and what it cannot compute:

- our ``{tf}_{reference}_{set}`` is KTRDR's ``{tf}_{fuzzy_set_id}_{membership}`` (the fuzzy
  group's name and the set's name in the file); a raw input ``{tf}_{reference}`` is
  ``{tf}_{indicator_id[.output]}_raw``; a strategy without fuzzy sets feeds every indicator
  output raw;
- indicator ids carry no dot (KTRDR splits a reference at its first dot): ``psar_0.02`` is
  written ``psar_0_02``;
- KTRDR's fuzzy sets read indicator values only. A set reading ``price / SMA`` or
  ``price / EMA`` of the same price is rewritten on KTRDR's ``distancefromma``
  (``100 * (price / MA - 1)``) with its parameters mapped the same way; other price ratios
  cannot be computed by KTRDR;
- KTRDR's pipeline evaluates a trapezoid value by value and answers 0 exactly at a
  shoulder's edge (``[60, 70, 100, 100]`` at 100), where ours answers 1: the edge is moved
  by one float step outward, which gives our value there and changes nothing elsewhere;
- KTRDR's SuperTrend never leaves its NaN seed and its ZigZag marks pivots with hindsight
  (tests/engine/test_ktrdr_golden_features.py): inputs reading them are not KTRDR's.

Higher timeframes are the one difference left on purpose: KTRDR shows a higher-timeframe bar
from its open (docs/ktrdr.md), the engine once it has closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training_engine.features import (
    PRICE_CONTEXT_COLUMNS,
    fuzzy_input_name,
    indicator_column,
    reads_indicator,
)
from training_engine.indicators import KTRDR_INDICATORS
from training_engine.strategy import FuzzySetSpec, IndicatorSpec, StrategyConfig

# KTRDR's distancefromma takes a period of at most 200 (its Params).
_DISTANCE_MAX_PERIOD = 200
# Indicators whose KTRDR values differ from ours on purpose (the golden feature test).
_NOT_KTRDRS = {
    "supertrend": "KTRDR's SuperTrend never leaves its NaN seed",
    "zigzag": "KTRDR's ZigZag marks pivots with hindsight",
}


@dataclass(frozen=True)
class KtrdrInputs:
    """What ``metadata_v3.json`` says of the inputs, or ``problems`` when KTRDR cannot compute them.

    ``names`` and ``raw`` follow our input order: KTRDR's name of each input, and whether it
    is a raw indicator value (KTRDR normalises those itself, from ``normalization_params``)
    rather than a fuzzy membership.
    """

    indicators: dict[str, dict[str, Any]] = field(default_factory=dict)
    fuzzy_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    nn_inputs: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    raw: list[bool] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Membership:
    """One fuzzy input: its group, the indicator output it reads, and the set."""

    group: str
    reference: str  # ours: rsi_14, adx_14.plus_di
    spec: IndicatorSpec
    fuzzy_set: FuzzySetSpec


@dataclass(frozen=True)
class _Raw:
    reference: str
    spec: IndicatorSpec


def ktrdr_inputs(strategy: StrategyConfig, feature_names: Sequence[str]) -> KtrdrInputs:
    """KTRDR's indicators, fuzzy sets, nn_inputs and input names for these inputs.

    Args:
        strategy: the resolved strategy the inputs were computed from.
        feature_names: the network's inputs in order (``PreparedDataset.feature_names``).
    """
    builder = _Builder(strategy)
    sources = _sources(strategy)
    unknown: list[str] = []
    for name in feature_names:
        timeframe, _, own = name.partition("_")
        source = sources.get(own)
        if own in PRICE_CONTEXT_COLUMNS and strategy.features.include_price_context:
            builder.problem(
                "price context inputs (model.features.include_price_context): "
                "KTRDR does not compute them"
            )
        elif source is None or timeframe not in strategy.timeframes:
            unknown.append(name)
        else:
            builder.add(timeframe, source)
    if unknown:
        builder.problems.append(
            f"inputs KTRDR does not compute: {', '.join(unknown[:5])}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        )
    return builder.finish()


def _sources(strategy: StrategyConfig) -> dict[str, _Membership | _Raw]:
    """Our input name on one timeframe (unprefixed) -> what it reads."""
    found: dict[str, _Membership | _Raw] = {}
    for reference, sets in strategy.fuzzy_sets.items():
        spec = _indicator_of(strategy, reference)
        if spec is None:
            continue
        for fuzzy_set in sets:
            found[fuzzy_input_name(reference, fuzzy_set)] = _Membership(
                _group_of(reference, fuzzy_set), reference, spec, fuzzy_set
            )
    if strategy.fuzzy_sets:
        raw = [entry.raw_indicator for entry in strategy.nn_inputs if entry.raw_indicator]
    else:  # the engine's own format: every output of every indicator, raw
        raw = [
            spec.feature_id if index == 0 else f"{spec.feature_id}.{output}"
            for spec in strategy.indicators
            for index, output in enumerate(KTRDR_INDICATORS[spec.type].outputs)
        ]
    for reference in raw:
        spec = _indicator_of(strategy, reference)
        if spec is not None:
            found[indicator_column(reference)] = _Raw(reference, spec)
    return found


def _group_of(reference: str, fuzzy_set: FuzzySetSpec) -> str:
    """The fuzzy set's group (KTRDR's fuzzy set id); a set built in code: its indicator."""
    return fuzzy_set.group or indicator_column(reference)


def _indicator_of(strategy: StrategyConfig, reference: str) -> IndicatorSpec | None:
    return next((s for s in strategy.indicators if reads_indicator(reference, s)), None)


def _output(reference: str, spec: IndicatorSpec) -> str | None:
    return reference[len(spec.feature_id) + 1 :] or None


class _Builder:
    """Collects KTRDR's definitions input by input, in our order."""

    def __init__(self, strategy: StrategyConfig) -> None:
        self.strategy = strategy
        self.ids = _ktrdr_ids(strategy.indicators)
        self.data_sources = _data_sources(strategy)
        self.indicators: dict[str, dict[str, Any]] = {}
        self.fuzzy_sets: dict[str, dict[str, Any]] = {}
        self.timeframes: dict[tuple[str, str], list[str]] = {}  # (kind, id) -> timeframes
        self.names: list[str] = []
        self.raw: list[bool] = []
        self.problems: list[str] = []

    def add(self, timeframe: str, source: _Membership | _Raw) -> None:
        different = _NOT_KTRDRS.get(source.spec.type)
        if different is not None:
            self.problem(f"{source.spec.feature_id}: {different}")
        if isinstance(source, _Raw):
            reference = self._reference(source.spec, _output(source.reference, source.spec))
            self._select(("raw", reference), timeframe)
            self.names.append(f"{timeframe}_{reference}_raw")
            self.raw.append(True)
            return
        if source.group not in self.fuzzy_sets:
            self._define_group(source)
        self._select(("fuzzy", source.group), timeframe)
        member = _member_name(self.strategy, source)
        self.names.append(f"{timeframe}_{source.group}_{member}")
        self.raw.append(False)

    def finish(self) -> KtrdrInputs:
        nn_inputs: list[dict[str, Any]] = []
        for (kind, name), timeframes in self.timeframes.items():
            if kind == "fuzzy":
                nn_inputs.append({"fuzzy_set": name, "timeframes": timeframes})
            else:
                scaled = self.strategy.features.scale_features
                nn_inputs.append(
                    {
                        "raw_indicator": name,
                        "timeframes": timeframes,
                        "normalization": "zscore" if scaled else "none",
                    }
                )
        self._check_names(nn_inputs)
        return KtrdrInputs(
            indicators=self.indicators,
            fuzzy_sets=self.fuzzy_sets,
            nn_inputs=nn_inputs,
            names=self.names,
            raw=self.raw,
            problems=self.problems,
        )

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def _select(self, key: tuple[str, str], timeframe: str) -> None:
        timeframes = self.timeframes.setdefault(key, [])
        if timeframe not in timeframes:
            timeframes.append(timeframe)

    def _reference(self, spec: IndicatorSpec, output: str | None) -> str:
        """KTRDR's reference to an output of ``spec``, defining the indicator on first use."""
        ktrdr_id = self.ids[spec.feature_id]
        if ktrdr_id not in self.indicators:
            entry = KTRDR_INDICATORS[spec.type]
            definition: dict[str, Any] = {"type": entry.names[0], **spec.params}
            if "source" in entry.defaults:
                definition["source"] = spec.source
            if spec.feature_id in self.data_sources:
                definition["data_source"] = self.data_sources[spec.feature_id]
            self.indicators[ktrdr_id] = definition
        return ktrdr_id if output is None else f"{ktrdr_id}.{output}"

    def _define_group(self, source: _Membership) -> None:
        """The group's KTRDR definition: the output it reads and every set of it, in order."""
        output = _output(source.reference, source.spec)
        transform = source.fuzzy_set.transform
        scale: tuple[float, float] = (1.0, 0.0)  # membership parameters -> a * p + b
        if transform is None:
            reference = self._reference(source.spec, output)
        else:
            distance = self._distance_from_ma(source.spec, output, transform, source.group)
            if distance is None:
                return
            reference, scale = distance, (100.0, -100.0)
        group: dict[str, Any] = {"indicator": reference}
        for fuzzy_set in self.strategy.fuzzy_sets[source.reference]:
            if _group_of(source.reference, fuzzy_set) == source.group:
                sibling = _Membership(source.group, source.reference, source.spec, fuzzy_set)
                group[_member_name(self.strategy, sibling)] = _membership(fuzzy_set, scale)
        self.fuzzy_sets[source.group] = group

    def _distance_from_ma(
        self, spec: IndicatorSpec, output: str | None, transform: str, group: str
    ) -> str | None:
        """KTRDR's ``distancefromma`` for ``price / MA``, or None (and a problem) where none is."""
        price = transform.removeprefix("price_ratio:")
        period = spec.params.get("period")
        exact = (
            spec.type in ("sma", "ema")
            and output is None
            and price == spec.source
            and spec.params.get("adjust", True) is True
            and isinstance(period, int)
            and period <= _DISTANCE_MAX_PERIOD
        )
        if not exact:
            self.problem(
                f"fuzzy set '{group}' reads {price} / {spec.feature_id}: KTRDR has no such "
                "input (of price ratios, only price / SMA or EMA maps to its distancefromma)"
            )
            return None
        definition = {
            "type": "distancefromma",
            "period": period,
            "ma_type": spec.type.upper(),
            "source": price,
        }
        known = next((k for k, d in self.indicators.items() if d == definition), None)
        if known is not None:  # another group reads the same ratio
            return known
        ktrdr_id = _unique(f"{self.ids[spec.feature_id]}_distance", self._taken())
        self.indicators[ktrdr_id] = definition
        return ktrdr_id

    def _taken(self) -> set[str]:
        return set(self.ids.values()) | set(self.indicators)

    def _check_names(self, nn_inputs: list[dict[str, Any]]) -> None:
        """KTRDR resolves nn_inputs to exactly our inputs, each name once."""
        if self.problems:
            return
        if len(set(self.names)) != len(self.names):
            twice = sorted({n for n in self.names if self.names.count(n) > 1})
            self.problem(f"inputs share KTRDR's names: {', '.join(twice)}")
        resolved = set()
        for entry in nn_inputs:
            for timeframe in entry["timeframes"]:
                if "fuzzy_set" in entry:
                    members = [k for k in self.fuzzy_sets[entry["fuzzy_set"]] if k != "indicator"]
                    resolved |= {f"{timeframe}_{entry['fuzzy_set']}_{m}" for m in members}
                else:
                    resolved.add(f"{timeframe}_{entry['raw_indicator']}_raw")
        if not self.problems and resolved != set(self.names):
            extra = sorted(resolved - set(self.names))
            self.problem(f"KTRDR would compute inputs the model does not read: {extra[:5]}")


def _ktrdr_ids(indicators: Sequence[IndicatorSpec]) -> dict[str, str]:
    """Our feature id -> KTRDR's indicator id: the same, with any dot made an underscore."""
    ids: dict[str, str] = {}
    plain = {spec.feature_id for spec in indicators if "." not in spec.feature_id}
    for spec in indicators:
        if "." not in spec.feature_id:
            ids[spec.feature_id] = spec.feature_id
            continue
        ids[spec.feature_id] = _unique(spec.feature_id.replace(".", "_"), plain | set(ids.values()))
    return ids


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    return candidate


def _data_sources(strategy: StrategyConfig) -> dict[str, str]:
    """Feature id -> the ``data_source`` (KTRDR's context data) its entry in the file names."""
    given = strategy.raw.get("indicators")
    entries = list(given.values()) if isinstance(given, Mapping) else given
    if not isinstance(entries, list) or len(entries) != len(strategy.indicators):
        return {}
    return {
        spec.feature_id: str(entry["data_source"])
        for spec, entry in zip(strategy.indicators, entries, strict=True)
        if isinstance(entry, Mapping) and entry.get("data_source")
    }


def _member_name(strategy: StrategyConfig, source: _Membership) -> str:
    """The set's name in its group, as the file wrote it.

    A group named apart from the indicator it reads prefixes its sets' names with its own
    (``strategy.resolve``); KTRDR names the feature from the group and the set apart.
    """
    groups = strategy.raw.get("fuzzy_sets")
    written = groups.get(source.group) if isinstance(groups, Mapping) else None
    pointed = written.get("indicator") if isinstance(written, Mapping) else None
    name = source.fuzzy_set.name
    if pointed is None or source.group in (source.spec.feature_id, pointed):
        return name
    return name.removeprefix(f"{source.group}_")


def _membership(fuzzy_set: FuzzySetSpec, scale: tuple[float, float]) -> dict[str, Any]:
    """KTRDR's membership definition: parameters mapped by ``a * p + b`` (sigma by ``a``)."""
    a, b = scale
    p = [float(v) for v in fuzzy_set.parameters]
    if fuzzy_set.type == "gaussian":
        parameters = [a * p[0] + b, a * p[1]]
    else:
        parameters = [a * v + b for v in p]
    if fuzzy_set.type == "trapezoidal":
        # KTRDR's pipeline answers 0 at x <= a and x >= d before the plateau; ours 1 at a
        # shoulder's edge (a == b, c == d). One float step outward gives ours there.
        if parameters[0] == parameters[1]:
            parameters[0] = float(np.nextafter(parameters[0], -np.inf))
        if parameters[2] == parameters[3]:
            parameters[3] = float(np.nextafter(parameters[3], np.inf))
    return {"type": fuzzy_set.type, "parameters": parameters}
