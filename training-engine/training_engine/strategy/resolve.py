"""From a validated ``StrategyDocument`` to the engine's ``StrategyConfig``.

What the document models cannot check alone happens here: indicator parameters against
the indicator table, fuzzy groups against the indicators they read, the base timeframe
against the list, and one list of the keys the engine does not use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from training_engine.errors import StrategyConfigError
from training_engine.strategy.config import (
    DataSplit,
    EvaluationConfig,
    FeatureConfig,
    FuzzySetSpec,
    IndicatorSpec,
    LabelConfig,
    ModelConfig,
    StrategyConfig,
    TrainingSettings,
)
from training_engine.strategy.document import FuzzyGroup, IndicatorEntry, StrategyDocument
from training_engine.strategy.indicator_table import (
    INDICATORS,
    PARAMETER_ALIASES,
    derived_feature_id,
    indicator_type,
)
from training_engine.strategy.problems import as_config_error, dotted, nearest
from training_engine.strategy.sections import DocumentSection, TrainingDataSection
from training_engine.strategy.values import Count, Positive

E = TypeVar("E", bound=BaseModel)
_INTEGER: TypeAdapter[int] = TypeAdapter(Count)
_REAL: TypeAdapter[float] = TypeAdapter(Positive)


def unused_keys(section: DocumentSection, path: str) -> list[str]:
    """Unused keys of ``section`` and of the sections below it, as dotted keys."""
    found = [dotted([key], path) for key in section.unused_keys()]
    for name, value in section:
        if isinstance(value, DocumentSection):
            found += unused_keys(
                value, dotted([type(section).model_fields[name].alias or name], path)
            )
    return found


def _engine_view(model: type[E], section: BaseModel) -> E:
    # The sections inherit the engine models' fields; extras are dropped on the way.
    return model.model_validate(section.model_dump(by_alias=False))


def _timeframes(section: TrainingDataSection) -> tuple[tuple[str, ...], str]:
    frames = section.timeframes
    listed = frames.items or ((frames.timeframe,) if frames.timeframe else ())
    timeframes = listed or (frames.base_timeframe or "1h",)
    base = frames.base_timeframe or timeframes[0]
    if base not in timeframes:
        raise StrategyConfigError(
            "training_data.timeframes.base_timeframe",
            f"'{base}' is not in the timeframes list {list(timeframes)}",
        )
    return timeframes, base


def _parameter(kind: str, name: str, value: Any, key: str) -> int | float:
    adapter = _REAL if name in INDICATORS[kind].real_valued else _INTEGER
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise as_config_error(exc, key) from None


def _indicator(
    entry: IndicatorEntry, key: str, explicit_id: str | None, unused: list[str]
) -> IndicatorSpec:
    # In a list the type is `name`; keyed by id (KTRDR v3) it is `type`, or else `name`.
    type_key = "type" if explicit_id is not None and entry.type is not None else "name"
    raw_type = entry.type if type_key == "type" else entry.name
    if raw_type is None:
        raise StrategyConfigError(key, f"missing '{type_key}' (the indicator type)")
    kind = indicator_type(str(raw_type))
    if kind not in INDICATORS:
        raise StrategyConfigError(
            f"{key}.{type_key}",
            f"unsupported indicator {raw_type!r}; supported: {', '.join(INDICATORS)}",
        )
    table = INDICATORS[kind]
    params: dict[str, int | float] = dict(table.defaults)
    for given, value in (entry.model_extra or {}).items():
        name = PARAMETER_ALIASES.get(kind, {}).get(given, given)
        if name in table.names:
            params[name] = _parameter(kind, name, value, f"{key}.{name}")
            continue
        suggestion = nearest(name, {*table.names, "source"}, cutoff=0.75)
        if suggestion is not None:
            raise StrategyConfigError(
                f"{key}.{name}", f"unknown parameter for {kind}; did you mean '{suggestion}'?"
            )
        unused.append(f"{key}.{name}")
    if kind == "macd" and params["fast_period"] >= params["slow_period"]:
        raise StrategyConfigError(f"{key}.fast_period", "must be smaller than slow_period")
    feature_id = explicit_id or entry.feature_id or derived_feature_id(kind, params)
    return IndicatorSpec(feature_id=feature_id, type=kind, params=params, source=entry.source)


def _indicators(document: StrategyDocument, unused: list[str]) -> tuple[IndicatorSpec, ...]:
    given = document.indicators
    if isinstance(given, list):
        specs = [_indicator(e, f"indicators[{i}]", None, unused) for i, e in enumerate(given)]
    else:
        specs = [_indicator(e, f"indicators.{k}", str(k), unused) for k, e in given.items()]
    seen: set[str] = set()
    for spec in specs:
        if spec.feature_id in seen:
            raise StrategyConfigError(
                "indicators",
                f"two indicators share the feature id '{spec.feature_id}'; give one a feature_id",
            )
        seen.add(spec.feature_id)
    return tuple(specs)


def _fuzzy_target(key: str, indicators: tuple[IndicatorSpec, ...]) -> str:
    ids = {i.feature_id for i in indicators}
    if key in ids:
        return key
    head, *rest = key.split("_")
    kind = indicator_type(head)
    candidates = [
        i.feature_id for i in indicators if i.type == kind or i.feature_id.split("_")[0] == key
    ]
    if len(candidates) == 1:
        return candidates[0]
    # KTRDR names stochastic sets stochastic_14_3_3: match on the leading parameters.
    for spec in indicators:
        own = spec.feature_id.split("_")[1:]
        if spec.type == kind and rest[: len(own)] == own:
            return spec.feature_id
    raise StrategyConfigError(
        f"fuzzy_sets.{key}", f"no indicator with this id; indicators are {sorted(ids)}"
    )


def _fuzzy_sets(
    groups: Mapping[str, FuzzyGroup], indicators: tuple[IndicatorSpec, ...], unused: list[str]
) -> dict[str, tuple[FuzzySetSpec, ...]]:
    result: dict[str, tuple[FuzzySetSpec, ...]] = {}
    for group_key, group in groups.items():
        path = f"fuzzy_sets.{group_key}"
        # KTRDR v3 names a group freely and points it at an indicator with `indicator:`;
        # older files key the group by the indicator itself.
        reference = group_key if group.indicator is None else group.indicator
        if not isinstance(reference, str) or not reference:
            raise StrategyConfigError(
                f"{path}.indicator", f"expected an indicator id, got {reference!r}"
            )
        if "." in reference:
            raise StrategyConfigError(
                f"{path}.indicator",
                f"fuzzy sets read an indicator's main output; '{reference}' names another "
                "output, which this engine does not support",
            )
        target = _fuzzy_target(reference, indicators)
        # Sets of a group named apart from its indicator keep the group's name in theirs.
        prefix = "" if group_key in (target, reference) else f"{group_key}_"
        parsed = list(result.get(target, ()))
        for set_name, body in group.sets().items():
            unused += unused_keys(body, f"{path}.{set_name}")
            parsed.append(
                FuzzySetSpec(
                    name=f"{prefix}{set_name}",
                    type=body.type,
                    parameters=tuple(float(p) for p in body.parameters or ()),
                )
            )
        result[target] = tuple(parsed)
    return result


def _model(document: StrategyDocument) -> ModelConfig:
    architecture = document.model.architecture
    shape = {name: getattr(architecture, name) for name in type(architecture).model_fields}
    return ModelConfig(type=document.model.type, **shape)


def resolve(
    document: StrategyDocument, default_name: str, raw: Mapping[str, Any], symbols_unused: list[str]
) -> StrategyConfig:
    """The engine's config for a validated document (``raw``: the document as given).

    ``symbols_unused``: unused keys of ``training_data.symbols``, found while validating.
    """
    data = document.training_data
    unused = [dotted([key]) for key in document.unused_keys()]
    unused += [f"training_data.{key}" for key in data.unused_keys()] + symbols_unused
    unused += unused_keys(data.timeframes, "training_data.timeframes")
    timeframes, base = _timeframes(data)
    indicators = _indicators(document, unused)
    fuzzy = _fuzzy_sets(document.fuzzy_sets or {}, indicators, unused)
    unused += unused_keys(document.model, "model")
    unused += unused_keys(document.training, "training")
    unused += unused_keys(document.evaluation, "evaluation")
    return StrategyConfig(
        name=(document.name or default_name).strip(),
        symbols=data.symbols,
        timeframes=timeframes,
        base_timeframe=base,
        indicators=indicators,
        fuzzy_sets=fuzzy,
        model=_model(document),
        features=_engine_view(FeatureConfig, document.model.features),
        training=_engine_view(TrainingSettings, document.model.training),
        labels=_engine_view(LabelConfig, document.training.labels),
        data_split=_engine_view(DataSplit, document.training.data_split),
        evaluation=_engine_view(EvaluationConfig, document.evaluation),
        bar_timestamp=data.bar_timestamp,
        timezone=data.timezone,
        raw=dict(raw),
        ignored_keys=tuple(unused),
    )
