"""From a validated ``StrategyDocument`` to the engine's ``StrategyConfig``.

What the document models cannot check alone happens here: indicator parameters against
the indicator table, fuzzy groups against the indicators they read, the base timeframe
against the list, and one list of the keys the engine does not use.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from training_engine.errors import StrategyConfigError
from training_engine.strategy.config import (
    ContextSource,
    DataSplit,
    EvaluationConfig,
    FeatureConfig,
    FuzzySetSpec,
    IndicatorSpec,
    LabelConfig,
    ModelConfig,
    NNInput,
    StrategyConfig,
    TrainingSettings,
)
from training_engine.strategy.document import (
    FuzzyGroup,
    IndicatorEntry,
    NNInputEntry,
    StrategyDocument,
)
from training_engine.strategy.document_schema import PARAMETER_CHOICES
from training_engine.strategy.indicator_table import (
    PARAMETER_ALIASES,
    ZERO_ALLOWED,
    IndicatorType,
    derived_feature_id,
    find_indicator,
    supported_names,
)
from training_engine.strategy.problems import as_config_error, dotted, nearest
from training_engine.strategy.references import IndicatorRef, find_reference
from training_engine.strategy.sections import DocumentSection, TrainingDataSection, engine_form
from training_engine.strategy.values import (
    Count,
    Flag,
    Positive,
    timeframe_minutes,
    validate_timeframe,
)

_INTEGER: TypeAdapter[int] = TypeAdapter(Count)
_REAL: TypeAdapter[float] = TypeAdapter(Positive)
_FLAG: TypeAdapter[bool] = TypeAdapter(Flag)


def unused_keys(section: DocumentSection, path: str) -> list[str]:
    """Unused keys of ``section`` and of the sections below it, as dotted keys."""
    found = [dotted([key], path) for key in section.unused_keys()]
    for name, value in section:
        if isinstance(value, DocumentSection):
            found += unused_keys(
                value, dotted([type(section).model_fields[name].alias or name], path)
            )
    return found


def _timeframes(section: TrainingDataSection) -> tuple[tuple[str, ...], str]:
    frames = section.timeframes
    listed = frames.items or frames.timeframes or ((frames.timeframe,) if frames.timeframe else ())
    timeframes = listed or (frames.base_timeframe or "1h",)
    # Without a base, KTRDR trains on the highest-frequency timeframe.
    base = frames.base_timeframe or min(timeframes, key=timeframe_minutes)
    if base not in timeframes:
        raise StrategyConfigError(
            "training_data.timeframes.base_timeframe",
            f"'{base}' is not in the timeframes list {list(timeframes)}",
        )
    return timeframes, base


def _parameter(kind: IndicatorType, name: str, value: Any, key: str) -> bool | int | float | str:
    default = kind.defaults[name]
    try:
        if isinstance(default, bool):
            return _FLAG.validate_python(value)
        if isinstance(default, int):
            if (kind.key, name) in ZERO_ALLOWED and value == 0 and not isinstance(value, bool):
                return 0
            return _INTEGER.validate_python(value)
        if isinstance(default, float):
            return _REAL.validate_python(value)
    except ValidationError as exc:
        raise as_config_error(exc, key) from None
    if not isinstance(value, str) or not value.strip():
        raise StrategyConfigError(key, f"expected a string like {default!r}, got {value!r}")
    text = value.strip().upper() if str(default).isupper() else value.strip()
    choices = PARAMETER_CHOICES.get((kind.key, name))
    if choices is not None and text not in choices:
        raise StrategyConfigError(key, f"expected one of {', '.join(choices)}, got {value!r}")
    return text


def _data_source(entry: IndicatorEntry, key: str, sources: Collection[str]) -> str | None:
    """The indicator's ``data_source``, which must be an id ``context_data`` gives (KTRDR's
    check)."""
    wanted = entry.data_source
    if wanted is None or wanted in sources:
        return wanted
    given = f"context_data gives {sorted(sources)}" if sources else "no context_data declared"
    raise StrategyConfigError(
        f"{key}.data_source", f"'{wanted}' is no context_data source id ({given})"
    )


def _indicator(
    entry: IndicatorEntry,
    key: str,
    explicit_id: str | None,
    unused: list[str],
    sources: Collection[str] = (),
) -> tuple[IndicatorSpec, str]:
    """The spec, and the name the file gave its type (fuzzy groups may be keyed by it)."""
    # In a list the type is `name`; keyed by id (KTRDR v3) it is `type`, or else `name`.
    type_key = "type" if explicit_id is not None and entry.type is not None else "name"
    raw_type = entry.type if type_key == "type" else entry.name
    if raw_type is None:
        raise StrategyConfigError(key, f"missing '{type_key}' (the indicator type)")
    kind = find_indicator(str(raw_type))
    if kind is None:
        raise StrategyConfigError(
            f"{key}.{type_key}",
            f"unsupported indicator {raw_type!r}; KTRDR's indicators are "
            f"{', '.join(supported_names())} (class names such as RSIIndicator work too)",
        )
    params: dict[str, bool | int | float | str] = {
        name: value  # type: ignore[misc]
        for name, value in kind.defaults.items()
        if name != "source"
    }
    for given, value in (entry.model_extra or {}).items():
        name = PARAMETER_ALIASES.get(kind.key, {}).get(given, given)
        if name in kind.names:
            params[name] = _parameter(kind, name, value, f"{key}.{name}")
            continue
        # KTRDR ignores parameters an indicator does not take (squeezeintensity's `period`
        # beside its bb_period): only a misspelling (letters swapped or missing) is refused.
        similar = {n for n in (*kind.names, "source") if abs(len(n) - len(name)) <= 2}
        suggestion = nearest(name, similar, cutoff=0.75)
        if suggestion is not None:
            raise StrategyConfigError(
                f"{key}.{name}", f"unknown parameter for {kind.key}; did you mean '{suggestion}'?"
            )
        unused.append(f"{key}.{name}")
    if kind.key == "macd" and params["fast_period"] >= params["slow_period"]:  # type: ignore[operator]
        raise StrategyConfigError(f"{key}.fast_period", "must be smaller than slow_period")
    feature_id = explicit_id or entry.feature_id or derived_feature_id(kind, params)
    spec = IndicatorSpec(
        feature_id=feature_id,
        type=kind.key,
        params=params,
        source=entry.source,
        data_source=_data_source(entry, key, sources),
    )
    return spec, str(raw_type).strip()


def _indicators(
    document: StrategyDocument, unused: list[str], sources: Collection[str] = ()
) -> tuple[tuple[IndicatorSpec, ...], dict[str, str]]:
    """The specs, and each one's type name as written (feature id -> name)."""
    given = document.indicators
    if isinstance(given, list):
        found = [
            _indicator(e, f"indicators[{i}]", None, unused, sources) for i, e in enumerate(given)
        ]
    else:
        found = [
            _indicator(e, f"indicators.{k}", str(k), unused, sources) for k, e in given.items()
        ]
    specs = [spec for spec, _ in found]
    written = {spec.feature_id: name for spec, name in found}
    seen: set[str] = set()
    for spec in specs:
        if spec.feature_id in seen:
            raise StrategyConfigError(
                "indicators",
                f"two indicators share the feature id '{spec.feature_id}'; give one a feature_id",
            )
        seen.add(spec.feature_id)
    return tuple(specs), written


def _context_data(document: StrategyDocument, unused: list[str]) -> tuple[ContextSource, ...]:
    """The ``context_data`` entries; two giving the same source id are refused."""
    entries: list[ContextSource] = []
    seen: set[str] = set()
    for index, entry in enumerate(document.context_data or []):
        path = f"context_data[{index}]"
        unused += [dotted([key], path) for key in entry.unused_keys()]
        source = ContextSource(
            provider=entry.provider,
            symbol=entry.symbol,
            timeframe=entry.timeframe or ("1h" if entry.provider == "ib" else None),  # KTRDR's
            series=entry.series,
            report=entry.report,
            alignment=entry.alignment,
        )
        repeated = seen.intersection(source.source_ids)
        if repeated:
            raise StrategyConfigError(path, f"source id(s) {sorted(repeated)} given twice")
        seen.update(source.source_ids)
        entries.append(source)
    return tuple(entries)


def _fuzzy_transform(
    group: FuzzyGroup, target: IndicatorRef, listed: bool, path: str
) -> str | None:
    """``price_ratio:<reference>`` where the set reads price / value, else None.

    An ``input_transform`` says so (KTRDR v3, before 9763736c); v1/v2 files (indicators
    as a list) read SMA and EMA as close / average, as KTRDR's trainer did then.
    """
    transform = group.input_transform
    if transform is not None:
        return f"price_ratio:{transform.reference}" if transform.type == "price_ratio" else None
    if listed and target.spec.type in ("sma", "ema") and target.output is None:
        return "price_ratio:close"
    return None


def _fuzzy_sets(
    document: StrategyDocument,
    indicators: tuple[IndicatorSpec, ...],
    written: Mapping[str, str],
    unused: list[str],
) -> dict[str, tuple[FuzzySetSpec, ...]]:
    groups: Mapping[str, FuzzyGroup] = document.fuzzy_sets or {}
    listed = isinstance(document.indicators, list)
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
        at = path if group.indicator is None else f"{path}.indicator"
        target = find_reference(reference, indicators, written, at)
        transform = _fuzzy_transform(group, target, listed, path)
        # Sets of a group named apart from its indicator keep the group's name in theirs.
        prefix = "" if group_key in (target.spec.feature_id, reference) else f"{group_key}_"
        parsed = list(result.get(target.key, ()))
        for set_name, body in group.sets().items():
            unused += unused_keys(body, f"{path}.{set_name}")
            parsed.append(
                FuzzySetSpec(
                    name=f"{prefix}{set_name}",
                    type=body.type,
                    parameters=tuple(float(p) for p in body.parameters or ()),
                    transform=transform,
                    group=group_key,
                )
            )
        result[target.key] = tuple(parsed)
    return result


def _nn_inputs(
    entries: list[NNInputEntry] | None,
    document: StrategyDocument,
    indicators: tuple[IndicatorSpec, ...],
    written: Mapping[str, str],
) -> tuple[NNInput, ...]:
    groups = set(document.fuzzy_sets or {})
    result: list[NNInput] = []
    for index, entry in enumerate(entries or []):
        path = f"nn_inputs[{index}]"
        frames = (
            None
            if entry.timeframes == "all"
            else tuple(
                validate_timeframe(t, f"{path}.timeframes[{i}]")
                for i, t in enumerate(entry.timeframes)
            )
        )
        raw = entry.raw_indicator
        if entry.fuzzy_set is not None and entry.fuzzy_set not in groups:
            raise StrategyConfigError(
                f"{path}.fuzzy_set",
                f"no fuzzy set group '{entry.fuzzy_set}'; groups are {sorted(groups)}",
            )
        if raw is not None:
            raw = find_reference(raw, indicators, written, f"{path}.raw_indicator").key
        result.append(
            NNInput(
                fuzzy_set=entry.fuzzy_set,
                raw_indicator=raw,
                timeframes=frames,
                normalization=entry.normalization,
            )
        )
    return tuple(result)


def _training(document: StrategyDocument) -> TrainingSettings:
    """``model.training``, with KTRDR v3's top-level ``training`` keys taking precedence."""
    return document.training.settings(engine_form(document.model.training, TrainingSettings))


def _dates(document: StrategyDocument) -> tuple[str | None, str | None]:
    data = document.training_data
    for section in (data.date_range, document.training.date_range):
        if section is not None:
            return section.start, section.end
    return data.start_date, data.end_date


def _output_format(document: StrategyDocument, labels: LabelConfig) -> str:
    wanted = document.decisions.output_format or labels.task
    if (wanted == "regression") != (labels.task == "regression"):
        raise StrategyConfigError(
            "decisions.output_format",
            f"'{wanted}' does not fit training.labels.source '{labels.source}' "
            f"(a {labels.task} target); forward_return is the regression source",
        )
    return wanted


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
    context = _context_data(document, unused)
    sources = [sid for entry in context for sid in entry.source_ids]
    indicators, written = _indicators(document, unused, sources)
    read = {spec.data_source for spec in indicators}
    # KTRDR warns about an entry no indicator reads; it is not loaded.
    unused += [f"context_data[{i}]" for i, e in enumerate(context) if not read & set(e.source_ids)]
    fuzzy = _fuzzy_sets(document, indicators, written, unused)
    nn_inputs = _nn_inputs(document.nn_inputs, document, indicators, written)
    unused += unused_keys(document.model, "model")
    unused += unused_keys(document.training, "training")
    unused += unused_keys(document.decisions, "decisions")
    unused += unused_keys(document.evaluation, "evaluation")
    labels = engine_form(document.training.labels, LabelConfig)
    start, end = _dates(document)
    return StrategyConfig(
        name=(document.name or default_name).strip(),
        symbols=data.symbols,
        timeframes=timeframes,
        base_timeframe=base,
        indicators=indicators,
        fuzzy_sets=fuzzy,
        model=_model(document),
        features=engine_form(document.model.features, FeatureConfig),
        training=_training(document),
        labels=labels,
        data_split=engine_form(document.training.data_split, DataSplit),
        evaluation=engine_form(document.evaluation, EvaluationConfig),
        bar_timestamp=data.bar_timestamp,
        timezone=data.timezone,
        raw=dict(raw),
        ignored_keys=tuple(unused),
        nn_inputs=nn_inputs,
        output_format=_output_format(document, labels),
        start_date=start,
        end_date=end,
        context_data=context,
    )
