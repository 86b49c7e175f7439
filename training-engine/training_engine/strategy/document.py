"""The strategy document as KTRDR writes it, and the training overrides a request may send.

``StrategyDocument`` is the shape of a strategy file and of an inline ``strategy`` object;
``TrainingOverrides`` is the shape of a request's ``config`` (and of the CLI's flags). Both
are public so the services can put their JSON Schema in their OpenAPI documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from training_engine.errors import StrategyConfigError
from training_engine.strategy.document_schema import (
    fuzzy_set_schema,
    indicator_entry_schema,
    nn_input_schema,
)
from training_engine.strategy.examples import OVERRIDES_EXAMPLE, STRATEGY_EXAMPLE
from training_engine.strategy.names import (
    CONTEXT_ALIGNMENTS,
    CONTEXT_PROVIDERS,
    FUZZY_TYPES,
    PRICE_SOURCES,
)
from training_engine.strategy.sections import (
    DocumentSection,
    EvaluationSection,
    LabelsAndSplitSection,
    ModelSection,
    TrainingDataSection,
    TrainingSection,
)
from training_engine.strategy.values import (
    SAFE_NAME_PATTERN,
    SourceName,
    Symbol,
    Timeframe,
    as_number,
    choice,
    enum_of,
    refuse,
    validate_name,
)

# ---------------------------------------------------------------- indicators


def _indicator_form(value: Any) -> str | None:
    return "list" if isinstance(value, list) else "by_id" if isinstance(value, dict) else None


def _require_indicators(value: Any) -> Any:
    if value is None or (isinstance(value, list | dict) and not value):
        raise refuse("at least one indicator is required")
    if not isinstance(value, list | dict):
        raise refuse("expected a list of {name, <params>, source}")
    return value


PriceSource = Annotated[
    str,
    BeforeValidator(choice(lambda: PRICE_SOURCES)),
    Field(json_schema_extra=enum_of(lambda: PRICE_SOURCES)),
]


class IndicatorEntry(BaseModel):
    """One indicator: its type, its parameters (``period: 14``), source and feature id.

    In a list the type is ``name``; keyed by id (KTRDR v3) it is ``type``. Parameters are
    checked against the indicator table when the strategy is resolved.
    """

    model_config = ConfigDict(frozen=True, extra="allow", json_schema_extra=indicator_entry_schema)
    __pydantic_extra__: dict[str, Any]  # the parameters, checked against the indicator table

    name: str | None = None
    type: str | None = None
    feature_id: str | None = None
    source: PriceSource = "close"
    data_source: str | None = Field(
        default=None, description="a context_data source id: compute on that series instead"
    )

    @model_validator(mode="before")
    @classmethod
    def _absent_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


Indicators = Annotated[
    # min_length documents the rule; _require_indicators refuses first, in its own words.
    Annotated[list[IndicatorEntry], Field(min_length=1), Tag("list")]
    | Annotated[dict[str, IndicatorEntry], Field(min_length=1), Tag("by_id")],
    Discriminator(_indicator_form),
    BeforeValidator(_require_indicators),
]


# ---------------------------------------------------------------- context_data


def _series_form(value: Any) -> Any:
    """FRED's ``series: DGS2`` or ``series: [DGS2, IRLTLT01DEM156N]`` -> a list."""
    return [value] if isinstance(value, str) else value


class ContextDataEntry(DocumentSection):
    """One ``context_data`` entry (KTRDR v3): another instrument's bars (``provider: ib``,
    ``symbol``, ``timeframe``), FRED series (``fred``, ``series``) or a CFTC COT report
    (``cftc_cot``, ``report``), read from files in the data folder (docs/engine-data.md)."""

    known_unused = frozenset({"instrument_type", "frequency"})
    _NEEDS: ClassVar[dict[str, str]] = {"ib": "symbol", "fred": "series", "cftc_cot": "report"}

    provider: Annotated[
        str,
        BeforeValidator(choice(lambda: CONTEXT_PROVIDERS)),
        Field(json_schema_extra=enum_of(lambda: CONTEXT_PROVIDERS)),
    ]
    alignment: Annotated[
        str,
        BeforeValidator(choice(lambda: CONTEXT_ALIGNMENTS)),
        Field(json_schema_extra=enum_of(lambda: CONTEXT_ALIGNMENTS)),
    ] = "forward_fill"
    symbol: Symbol | None = None
    timeframe: Timeframe | None = None
    series: Annotated[tuple[SourceName, ...], BeforeValidator(_series_form)] = ()
    report: SourceName | None = None

    @model_validator(mode="after")
    def _check_provider_keys(self) -> ContextDataEntry:
        needed = self._NEEDS[self.provider]
        if not getattr(self, needed):
            raise refuse(f"provider {self.provider} needs '{needed}'", at=needed)
        return self


# ---------------------------------------------------------------- fuzzy_sets


def _fuzzy_type_names() -> tuple[str, ...]:
    return tuple(FUZZY_TYPES)


def _shorthand_set(data: Any) -> Any:
    """KTRDR v3's ``oversold: [0, 25, 40]``: 3 numbers triangular, 4 trapezoidal."""
    if isinstance(data, list | tuple):
        kind = "trapezoidal" if len(data) == 4 else "triangular"
        return {"type": kind, "parameters": list(data)}
    return data


class FuzzySetBody(DocumentSection):
    """One membership function: ``{type: triangular, parameters: [0, 20, 40]}``, or the
    v3 shorthand list (3 numbers: triangular, 4: trapezoidal)."""

    model_config = ConfigDict(json_schema_extra=fuzzy_set_schema)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _shorthand_set(data)

    type: Annotated[
        str,
        BeforeValidator(choice(_fuzzy_type_names)),
        Field(json_schema_extra=enum_of(_fuzzy_type_names)),
    ] = "triangular"
    parameters: list[Any] | None = Field(
        default=None, description="triangular: 3, trapezoidal: 4, gaussian: [mean, sigma]"
    )

    @model_validator(mode="after")
    def _check_parameters(self) -> FuzzySetBody:
        count, numbers = FUZZY_TYPES[self.type], self.parameters
        if not isinstance(numbers, list) or len(numbers) != count:
            raise refuse(f"a {self.type} set takes {count} numbers, got {numbers!r}", "parameters")
        floats = [as_number(value, "parameters") for value in numbers]
        if self.type != "gaussian" and floats != sorted(floats):
            raise refuse(f"must be in increasing order, got {floats}", "parameters")
        if self.type == "gaussian" and floats[1] <= 0:
            raise refuse("gaussian takes [mean, sigma] with sigma > 0", "parameters")
        return self


class FuzzyGroup(BaseModel):
    """Sets over one indicator; KTRDR v3 names the group freely and sets ``indicator``."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, FuzzySetBody]

    indicator: Any = Field(
        default=None,
        description="the indicator's feature id, or id.output (adx_14.plus_di)",
        json_schema_extra={"type": "string", "minLength": 1},
    )
    input_transform: InputTransform | None = None

    @model_validator(mode="before")
    @classmethod
    def _absent_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data

    def sets(self) -> dict[str, FuzzySetBody]:
        return dict(self.model_extra or {})


class InputTransform(DocumentSection):
    """``input_transform: {type: price_ratio, reference: close}``: feed reference / value."""

    type: Annotated[
        str,
        BeforeValidator(choice(lambda: ("price_ratio", "identity"))),
        Field(json_schema_extra=enum_of(lambda: ("price_ratio", "identity"))),
    ] = "identity"
    reference: PriceSource = "close"


FuzzyGroup.model_rebuild()


class NNInputEntry(DocumentSection):
    """One ``nn_inputs`` entry (KTRDR v3): a fuzzy group or a raw indicator output."""

    model_config = ConfigDict(json_schema_extra=nn_input_schema)

    fuzzy_set: str | None = None
    raw_indicator: str | None = None
    timeframes: Any = "all"
    normalization: Annotated[
        str,
        BeforeValidator(choice(lambda: ("none", "minmax", "zscore"))),
        Field(json_schema_extra=enum_of(lambda: ("none", "minmax", "zscore"))),
    ] = "none"

    @model_validator(mode="after")
    def _one_source(self) -> NNInputEntry:
        if (self.fuzzy_set is None) == (self.raw_indicator is None):
            raise refuse("give exactly one of fuzzy_set or raw_indicator")
        if self.timeframes != "all" and not (
            isinstance(self.timeframes, list) and all(isinstance(t, str) for t in self.timeframes)
        ):
            raise refuse(f"expected 'all' or a list of timeframes, got {self.timeframes!r}")
        return self


class DecisionsSection(DocumentSection):
    """``decisions``: only ``output_format`` shapes training (the rest is for trading)."""

    known_unused = frozenset(
        {
            "confidence_threshold",
            "position_awareness",
            "filters",
            "cost_model",
            "min_confidence",
            "signal_threshold",
        }
    )

    output_format: Annotated[
        str | None,
        BeforeValidator(choice(lambda: ("classification", "regression"))),
        Field(json_schema_extra=enum_of(lambda: ("classification", "regression"))),
    ] = Field(default=None, description="default: regression for forward_return labels")


# ---------------------------------------------------------------- the document


def _name(value: Any) -> Any:
    # The name becomes the model folder: the rule every name that becomes a path follows.
    if not isinstance(value, str) or not value.strip():
        raise refuse(f"expected a non-empty string, got {value!r}")
    try:
        return validate_name(value.strip(), "name", "a strategy name")
    except StrategyConfigError as exc:
        raise refuse(exc.problem) from exc


def _document_schema(schema: dict[str, Any]) -> None:
    # `indicators` has a default only so that its absence is refused in the usual words.
    schema["properties"]["indicators"].pop("default", None)
    # `name` may be left out, but not be null or empty: it names the model folder.
    name = schema["properties"]["name"]
    name.pop("anyOf", None)
    name.pop("default", None)
    name.update(type="string", pattern=SAFE_NAME_PATTERN)
    schema["required"] = ["indicators"]
    schema["examples"] = [STRATEGY_EXAMPLE]


class StrategyDocument(DocumentSection):
    """A KTRDR-format strategy: a file under ``strategies/`` or an inline ``strategy``."""

    model_config = ConfigDict(json_schema_extra=_document_schema)
    known_unused = frozenset(
        {
            "description",
            "version",
            "hypothesis",
            "scope",
            "deployment",
            "orchestrator",
            "risk_management",
            "backtesting",
            "metadata",
            "author",
            "created",
            "tags",
        }
    )

    name: Annotated[str | None, BeforeValidator(_name)] = Field(
        default=None, description="defaults to the file's stem, or 'inline'"
    )
    training_data: TrainingDataSection = Field(default_factory=TrainingDataSection)
    indicators: Indicators = Field(default=None, validate_default=True)
    fuzzy_sets: dict[str, FuzzyGroup] | None = None
    nn_inputs: list[NNInputEntry] | None = None
    context_data: list[ContextDataEntry] | None = None
    decisions: DecisionsSection = Field(default_factory=DecisionsSection)
    model: ModelSection = Field(default_factory=ModelSection)
    training: LabelsAndSplitSection = Field(default_factory=LabelsAndSplitSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)


def _overrides_schema(schema: dict[str, Any]) -> None:
    # A key left out keeps the strategy's value, so the engine's defaults would mislead.
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)
    schema["examples"] = [OVERRIDES_EXAMPLE]


class TrainingOverrides(TrainingSection):
    """A request's ``config``: ``model.training`` keys that replace the strategy's values.

    Keys left out keep the strategy's value; an unknown key is an error.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_overrides_schema)

    @classmethod
    def used_keys(cls, data: Mapping[str, Any]) -> set[str]:
        known = set(cls.model_fields)
        for key in data:
            if key not in known:
                raise refuse(
                    f"unknown setting; expected one of {', '.join(sorted(known))}", at=str(key)
                )
        return known
