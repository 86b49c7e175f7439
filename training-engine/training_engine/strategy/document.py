"""The strategy document as KTRDR writes it, and the training overrides a request may send.

``StrategyDocument`` is the shape of a strategy file and of an inline ``strategy`` object;
``TrainingOverrides`` is the shape of a request's ``config`` (and of the CLI's flags). Both
are public so the services can put their JSON Schema in their OpenAPI documents.

Sections accept keys they do not use (KTRDR files carry many): a key that looks like a
misspelling of a used one is refused naming the nearest valid key; the others are listed in
one warning by ``parse_strategy``. Defaults come from the engine's models in ``config``.
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
    ValidationInfo,
    model_validator,
)

from training_engine.strategy.config import (
    DataSplit,
    EarlyStoppingConfig,
    FeatureConfig,
    LabelConfig,
    ModelConfig,
    TrainingSettings,
)
from training_engine.strategy.examples import OVERRIDES_EXAMPLE, STRATEGY_EXAMPLE
from training_engine.strategy.names import (
    FUZZY_TYPES,
    PRICE_SOURCES,
    activations,
    model_types,
)
from training_engine.strategy.problems import DESCRIPTIVE_KEYS, refuse_misspellings
from training_engine.strategy.values import (
    Count,
    Dropout,
    LayerSizes,
    Symbol,
    Timeframe,
    choice,
    enum_of,
    refuse,
)


class DocumentSection(BaseModel):
    """A section of a strategy file: misspelt keys refused, unused keys kept for the warning."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)
    # Keys KTRDR files carry here that the engine does not read (never "misspellings").
    known_unused: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, Mapping):
            refuse_misspellings(data, cls.used_keys(data), cls.known_unused)
        return data

    @classmethod
    def used_keys(cls, data: Mapping[str, Any]) -> set[str]:
        """The keys this section reads (by their names in the file)."""
        return {field.alias or name for name, field in cls.model_fields.items()}

    def unused_keys(self) -> list[str]:
        """Keys of this section (not below it) the engine does not read, in file order."""
        return [key for key in self.model_extra or {} if key not in DESCRIPTIVE_KEYS]


def _default(model: type[BaseModel], name: str) -> Any:
    """The engine model's default for a field: the one place defaults are written."""
    return model.model_fields[name].default


# ---------------------------------------------------------------- training_data


def _symbols_form(value: Any, info: ValidationInfo) -> Any:
    """``[AAPL]``, ``{list: [AAPL]}`` or ``{symbol: AAPL}`` -> a list of symbols."""
    if value is None or isinstance(value, list | tuple):
        return list(value or [])
    if not isinstance(value, Mapping):
        raise refuse(f"expected a mapping, got {type(value).__name__}")
    refuse_misspellings(value, {"list", "symbol"}, frozenset())
    if isinstance(info.context, dict):
        unused = [k for k in value if k not in ("list", "symbol") and k not in DESCRIPTIVE_KEYS]
        info.context["symbols_unused"] = [f"training_data.symbols.{k}" for k in unused]
    if "list" in value:
        if not isinstance(value["list"], list):
            raise refuse("expected a list", at="list")
        return value["list"]
    return [value["symbol"]] if "symbol" in value else []


def _or_list_of_names(shorthand: dict[str, Any]) -> Any:
    """JSON Schema: the field is a mapping (``shorthand``) or a plain list of names."""

    def extend(schema: dict[str, Any]) -> None:
        names = {"type": "array", "items": {"type": "string"}}
        mapping = dict(schema) if "$ref" in schema else shorthand
        schema.clear()
        schema["anyOf"] = [names, mapping]

    return extend


_SYMBOLS_MAPPING = {
    "type": "object",
    "properties": {
        "list": {"type": "array", "items": {"type": "string"}},
        "symbol": {"type": "string"},
    },
}


def _timeframes_form(value: Any) -> Any:
    return {"list": list(value)} if isinstance(value, list | tuple) else value


class TimeframesSection(DocumentSection):
    """``training_data.timeframes``: the list, or one ``timeframe``, and the base one."""

    items: tuple[Timeframe, ...] = Field(default=(), alias="list")
    timeframe: Timeframe | None = None
    base_timeframe: Timeframe | None = None


class TrainingDataSection(DocumentSection):
    """``training_data``: which symbols and timeframes to train on."""

    known_unused = frozenset({"history_required", "start_date", "end_date"})

    symbols: Annotated[tuple[Symbol, ...], BeforeValidator(_symbols_form)] = Field(
        default=(), json_schema_extra=_or_list_of_names(_SYMBOLS_MAPPING)
    )
    timeframes: Annotated[TimeframesSection, BeforeValidator(_timeframes_form)] = Field(
        default_factory=TimeframesSection, json_schema_extra=_or_list_of_names({})
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

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, int | float | str | bool | None]

    name: str | None = None
    type: str | None = None
    feature_id: str | None = None
    source: PriceSource = "close"

    @model_validator(mode="before")
    @classmethod
    def _absent_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


Indicators = Annotated[
    Annotated[list[IndicatorEntry], Tag("list")]
    | Annotated[dict[str, IndicatorEntry], Tag("by_id")],
    Discriminator(_indicator_form),
    BeforeValidator(_require_indicators),
]


# ---------------------------------------------------------------- fuzzy_sets


def _fuzzy_type_names() -> tuple[str, ...]:
    return tuple(FUZZY_TYPES)


class FuzzySetBody(DocumentSection):
    """One membership function: ``{type: triangular, parameters: [0, 20, 40]}``."""

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
        for value in numbers:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise refuse(f"expected a number >= None, got {value!r}", "parameters")
        floats = [float(v) for v in numbers]
        if self.type != "gaussian" and floats != sorted(floats):
            raise refuse(f"must be in increasing order, got {floats}", "parameters")
        if self.type == "gaussian" and floats[1] <= 0:
            raise refuse("gaussian takes [mean, sigma] with sigma > 0", "parameters")
        return self


class FuzzyGroup(BaseModel):
    """Sets over one indicator; KTRDR v3 names the group freely and sets ``indicator``."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, FuzzySetBody]

    indicator: Any = Field(default=None, description="the indicator's feature id")

    @model_validator(mode="before")
    @classmethod
    def _absent_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data

    def sets(self) -> dict[str, FuzzySetBody]:
        return dict(self.model_extra or {})


# ---------------------------------------------------------------- model


def _model_type_names() -> tuple[str, ...]:
    return model_types()


class ArchitectureSection(DocumentSection):
    """``model.architecture``: the network's shape."""

    known_unused = frozenset({"output_activation"})

    hidden_layers: LayerSizes = _default(ModelConfig, "hidden_layers")
    activation: Annotated[
        str, BeforeValidator(choice(activations)), Field(json_schema_extra=enum_of(activations))
    ] = _default(ModelConfig, "activation")
    dropout: Dropout = _default(ModelConfig, "dropout")
    num_layers: Count = _default(ModelConfig, "num_layers")
    num_heads: Count = _default(ModelConfig, "num_heads")


class FeaturesSection(DocumentSection, FeatureConfig):
    """``model.features``."""

    model_config = ConfigDict(frozen=True, extra="allow")


class EarlyStoppingSection(DocumentSection, EarlyStoppingConfig):
    """``model.training.early_stopping`` (or ``false``)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    known_unused = frozenset({"monitor"})


def _early_stopping_form(value: Any) -> Any:
    return {"enabled": value} if isinstance(value, bool) else value


class TrainingSection(DocumentSection, TrainingSettings):
    """``model.training``: the optimisation settings."""

    model_config = ConfigDict(frozen=True, extra="allow")

    early_stopping: Annotated[EarlyStoppingSection, BeforeValidator(_early_stopping_form)] = Field(
        default_factory=EarlyStoppingSection
    )


class ModelSection(DocumentSection):
    """``model``: the network type, its shape, its inputs and how it is trained."""

    known_unused = frozenset({"name", "version"})

    type: Annotated[
        str,
        BeforeValidator(choice(_model_type_names)),
        Field(json_schema_extra=enum_of(_model_type_names)),
    ] = _default(ModelConfig, "type")
    architecture: ArchitectureSection = Field(default_factory=ArchitectureSection)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    training: TrainingSection = Field(default_factory=TrainingSection)


# ---------------------------------------------------------------- training


class LabelsSection(DocumentSection, LabelConfig):
    """``training.labels``: zigzag swings, or the sign of the forward return."""

    model_config = ConfigDict(frozen=True, extra="allow")
    _BY_SOURCE: ClassVar[dict[str, set[str]]] = {
        "zigzag": {"source", "zigzag_threshold", "label_lookahead"},
        "forward_return": {"source", "horizon", "threshold"},
    }

    @classmethod
    def used_keys(cls, data: Mapping[str, Any]) -> set[str]:
        source = data.get("source", "zigzag")
        source = source.strip().lower() if isinstance(source, str) else source
        return cls._BY_SOURCE.get(source, cls._BY_SOURCE["zigzag"])

    def unused_keys(self) -> list[str]:
        # The other source's settings are validated (and kept) but not used.
        used = self._BY_SOURCE[self.source]
        return [
            key
            for key in [*self.model_fields_set, *(self.model_extra or {})]
            if key not in used and key not in DESCRIPTIVE_KEYS
        ]


class DataSplitSection(DocumentSection, DataSplit):
    """``training.data_split``: each share > 0, summing to 1."""

    model_config = ConfigDict(frozen=True, extra="allow")

    @model_validator(mode="after")
    def _check_sum(self) -> DataSplitSection:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6 or min(self.train, self.validation, self.test) <= 0:
            raise refuse(f"train, validation and test must each be > 0 and sum to 1, got {total:g}")
        return self


class LabelsAndSplitSection(DocumentSection):
    """``training``: labels and the train/validation/test split."""

    known_unused = frozenset({"method"})

    labels: LabelsSection = Field(default_factory=LabelsSection)
    data_split: DataSplitSection = Field(default_factory=DataSplitSection)


# ---------------------------------------------------------------- the document


def _name(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise refuse(f"expected a non-empty string, got {value!r}")
    return value


def _document_schema(schema: dict[str, Any]) -> None:
    # `indicators` has a default only so that its absence is refused in the usual words.
    schema["properties"]["indicators"].pop("default", None)
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
            "decisions",
            "nn_inputs",
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
    model: ModelSection = Field(default_factory=ModelSection)
    training: LabelsAndSplitSection = Field(default_factory=LabelsAndSplitSection)


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
