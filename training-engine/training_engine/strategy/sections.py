"""The sections of a strategy document (``training_data``, ``model``, ``training``).

Why a document tree beside the engine's (``config``): a section is KTRDR's file as written,
with several spellings of one fact (symbols three ways, timeframes four, ``early_stopping:
false``, training settings in two places) and every key the engine does not read, kept so
that it can be reported; an engine model is the one resolved form that the engine, the
artifacts and the checkpoints' fingerprints read: one spelling per fact, no extra key. A
section that mirrors an engine model inherits its fields, types and defaults, and
:func:`engine_form` takes its values as they were validated (no dump, no second
validation); the other sections take their defaults from the engine models.

Each section accepts keys it does not use (KTRDR files carry many): a key that looks like a
misspelling of a used one is refused naming the nearest valid key; the others are listed in
one warning by ``parse_strategy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator

from training_engine.strategy.config import (
    BarTimestamp,
    DataSplit,
    EarlyStoppingConfig,
    EvaluationConfig,
    FeatureConfig,
    LabelConfig,
    LossName,
    ModelConfig,
    OptimizerName,
    SchedulerName,
    StrategyConfig,
    TimezoneName,
    TrainingSettings,
    early_stopping_form,
)
from training_engine.strategy.names import ACTIVATIONS, MODEL_TYPES
from training_engine.strategy.problems import DESCRIPTIVE_KEYS, refuse_misspellings
from training_engine.strategy.values import (
    SAFE_NAME_PATTERN,
    TIMEFRAME_PATTERN,
    BatchSize,
    Count,
    DateText,
    Dropout,
    Epochs,
    LayerCount,
    LayerSizes,
    NonNegative,
    Positive,
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


E = TypeVar("E", bound=BaseModel)


def engine_form(section: BaseModel, model: type[E]) -> E:
    """The engine model ``section`` mirrors (it inherits ``model``'s fields and validators),
    built from the section's values as validated; unused keys stay behind.

    Sections nested in it become their engine models the same way.
    """
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        value = getattr(section, name)
        nested = field.annotation
        if isinstance(value, DocumentSection) and isinstance(nested, type):
            value = engine_form(value, nested)
        values[name] = value
    fields_set = section.model_fields_set & set(model.model_fields)
    return model.model_construct(_fields_set=fields_set, **values)


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
    refuse_misspellings(value, {"list", "symbol", "symbols"}, frozenset())
    if isinstance(info.context, dict):
        unused = [
            k for k in value if k not in ("list", "symbol", "symbols") and k not in DESCRIPTIVE_KEYS
        ]
        info.context["symbols_unused"] = [f"training_data.symbols.{k}" for k in unused]
    for key in ("list", "symbols"):  # `symbols:` in KTRDR v3's multi_symbol mode
        if key in value:
            if not isinstance(value[key], list):
                raise refuse("expected a list", at=key)
            return value[key]
    return [value["symbol"]] if "symbol" in value else []


def _or_list_of_names(shorthand: dict[str, Any], pattern: str) -> Any:
    """JSON Schema: the field is a mapping (``shorthand``) or a plain list of names."""

    def extend(schema: dict[str, Any]) -> None:
        names = {"type": "array", "items": {"type": "string", "pattern": pattern}}
        mapping = dict(schema) if "$ref" in schema else shorthand
        schema.clear()
        schema["anyOf"] = [names, mapping]

    return extend


_SYMBOLS_MAPPING = {
    "type": "object",
    "properties": {
        "list": {"type": "array", "items": {"type": "string", "pattern": SAFE_NAME_PATTERN}},
        "symbol": {"type": "string", "pattern": SAFE_NAME_PATTERN},
    },
}


def _timeframes_form(value: Any) -> Any:
    return {"list": list(value)} if isinstance(value, list | tuple) else value


class TimeframesSection(DocumentSection):
    """``training_data.timeframes``: the list (``list``, or v3's ``timeframes``), or one
    ``timeframe``, and the base one."""

    items: tuple[Timeframe, ...] = Field(default=(), alias="list")
    timeframes: tuple[Timeframe, ...] = ()
    timeframe: Timeframe | None = None
    base_timeframe: Timeframe | None = None


class DateRangeSection(DocumentSection):
    """``date_range: {start, end}``: inclusive bounds on bar open times (dates)."""

    start: DateText | None = None
    end: DateText | None = None


class TrainingDataSection(DocumentSection):
    """``training_data``: which symbols and timeframes to train on, and when."""

    known_unused = frozenset({"history_required"})

    start_date: DateText | None = None
    end_date: DateText | None = None
    date_range: DateRangeSection | None = None
    symbols: Annotated[tuple[Symbol, ...], BeforeValidator(_symbols_form)] = Field(
        default=(), json_schema_extra=_or_list_of_names(_SYMBOLS_MAPPING, SAFE_NAME_PATTERN)
    )
    timeframes: Annotated[TimeframesSection, BeforeValidator(_timeframes_form)] = Field(
        default_factory=TimeframesSection,
        json_schema_extra=_or_list_of_names({}, TIMEFRAME_PATTERN),
    )
    bar_timestamp: BarTimestamp = _default(StrategyConfig, "bar_timestamp")
    timezone: TimezoneName = _default(StrategyConfig, "timezone")


# ---------------------------------------------------------------- model


class ArchitectureSection(DocumentSection):
    """``model.architecture``: the network's shape."""

    known_unused = frozenset({"output_activation"})

    hidden_layers: LayerSizes = _default(ModelConfig, "hidden_layers")
    activation: Annotated[
        str,
        BeforeValidator(choice(lambda: ACTIVATIONS)),
        Field(json_schema_extra=enum_of(lambda: ACTIVATIONS)),
    ] = _default(ModelConfig, "activation")
    dropout: Dropout = _default(ModelConfig, "dropout")
    num_layers: LayerCount = _default(ModelConfig, "num_layers")
    num_heads: Count = _default(ModelConfig, "num_heads")


class FeaturesSection(DocumentSection, FeatureConfig):
    """``model.features``."""

    model_config = ConfigDict(frozen=True, extra="allow")


class EarlyStoppingSection(DocumentSection, EarlyStoppingConfig):
    """``model.training.early_stopping`` (or ``false``)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    known_unused = frozenset({"monitor"})


class TrainingSection(DocumentSection, TrainingSettings):
    """``model.training``: the optimisation settings."""

    model_config = ConfigDict(frozen=True, extra="allow")

    early_stopping: Annotated[EarlyStoppingSection, BeforeValidator(early_stopping_form)] = Field(
        default_factory=EarlyStoppingSection
    )


class ModelSection(DocumentSection):
    """``model``: the network type, its shape, its inputs and how it is trained."""

    known_unused = frozenset({"name", "version"})

    type: Annotated[
        str,
        BeforeValidator(choice(lambda: MODEL_TYPES)),
        Field(json_schema_extra=enum_of(lambda: MODEL_TYPES)),
    ] = _default(ModelConfig, "type")
    architecture: ArchitectureSection = Field(default_factory=ArchitectureSection)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    training: TrainingSection = Field(default_factory=TrainingSection)


# ---------------------------------------------------------------- training


_TRIPLE_BARRIER_KEYS = [
    "pt_multiplier",
    "sl_multiplier",
    "max_holding_period",
    "vol_span",
    "vol_method",
    "cusum_threshold",
    "cusum_multiplier",
    "compute_weights",
]
_REGIME_KEYS = [
    "macro_atr_mult",
    "micro_atr_mult",
    "atr_period",
    "vol_lookback",
    "vol_crisis_threshold",
    "progression_tolerance",
]


class LabelsSection(DocumentSection, LabelConfig):
    """``training.labels``: one of KTRDR's label sources and its keys."""

    model_config = ConfigDict(frozen=True, extra="allow")
    _BY_SOURCE: ClassVar[dict[str, set[str]]] = {
        # KTRDR requires label_lookahead beside the threshold but its segment labels ignore it.
        "zigzag": {"source", "zigzag_threshold", "label_lookahead"},
        "forward_return": {"source", "horizon"},
        "context": {"source", "horizon", "bullish_threshold", "bearish_threshold"},
        "triple_barrier": {"source", *_TRIPLE_BARRIER_KEYS},
        "regime": {"source", *_REGIME_KEYS},
        "multi_scale_regime": {"source", *_REGIME_KEYS},
        "lookahead_move": {"source", "threshold", "label_lookahead"},
    }

    @classmethod
    def used_keys(cls, data: Mapping[str, Any]) -> set[str]:
        source = data.get("source", "zigzag")
        source = source.strip().lower() if isinstance(source, str) else source
        return cls._BY_SOURCE.get(source, cls._BY_SOURCE["zigzag"])

    def unused_keys(self) -> list[str]:
        # The other source's settings are validated (and kept) but not used.
        used = self._BY_SOURCE[self.source]
        given = [name for name in type(self).model_fields if name in self.model_fields_set]
        return [key for key in given if key not in used] + super().unused_keys()


class DataSplitSection(DocumentSection, DataSplit):
    """``training.data_split``: each share > 0, summing to 1."""

    model_config = ConfigDict(frozen=True, extra="allow")

    @model_validator(mode="after")
    def _check_sum(self) -> DataSplitSection:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6 or min(self.train, self.validation, self.test) <= 0:
            raise refuse(f"train, validation and test must each be > 0 and sum to 1, got {total:g}")
        return self


def _walk_forward_folds(schema: dict[str, Any]) -> None:
    schema["if"] = {"properties": {"method": {"const": "walk_forward"}}, "required": ["method"]}
    schema["then"] = {"properties": {"folds": {"minimum": 2}}}


class EvaluationSection(DocumentSection, EvaluationConfig):
    """``evaluation``: ``{method: walk_forward, folds: K}`` trains K models in turn."""

    model_config = ConfigDict(frozen=True, extra="allow", json_schema_extra=_walk_forward_folds)

    @model_validator(mode="after")
    def _check_folds(self) -> EvaluationSection:
        if self.method == "walk_forward" and self.folds < 2:
            raise refuse("walk_forward needs folds >= 2", at="folds")
        return self


def _scheduler_form(value: Any) -> Any:
    """``lr_scheduler: true`` is KTRDR's default (step); ``false`` none."""
    if isinstance(value, bool):
        return {"type": "step" if value else "none"}
    return value


class LrSchedulerSection(DocumentSection):
    """``training.lr_scheduler`` (KTRDR v3): step (the default), exponential or
    reduce_on_plateau, with KTRDR's defaults; ``true``/``false`` switch it."""

    type: SchedulerName = "step"
    step_size: Count | None = None
    gamma: Positive | None = None
    factor: Positive | None = None
    patience: Count | None = None


class LabelsAndSplitSection(DocumentSection):
    """``training``: labels, the split, and (KTRDR v3) the optimisation settings."""

    known_unused = frozenset({"method", "validation_split"})

    labels: LabelsSection = Field(default_factory=LabelsSection)
    data_split: DataSplitSection = Field(default_factory=DataSplitSection)
    epochs: Epochs | None = None
    learning_rate: Positive | None = None
    batch_size: BatchSize | None = None
    optimizer: OptimizerName | None = None
    loss: LossName | None = None
    focal_gamma: NonNegative | None = None
    huber_delta: Positive | None = None
    lr_scheduler: Annotated[LrSchedulerSection | None, BeforeValidator(_scheduler_form)] = None
    early_stopping: Annotated[EarlyStoppingSection | None, BeforeValidator(early_stopping_form)] = (
        None
    )
    date_range: DateRangeSection | None = None

    def settings(self, base: TrainingSettings) -> TrainingSettings:
        """``base`` (``model.training``) with the optimisation settings given here."""
        given = {
            name: getattr(self, name)
            for name in ("epochs", "learning_rate", "batch_size", "optimizer", "loss")
            if getattr(self, name) is not None
        }
        given.update(
            {n: getattr(self, n) for n in ("focal_gamma", "huber_delta") if getattr(self, n)}
        )
        if self.early_stopping is not None:
            given["early_stopping"] = engine_form(self.early_stopping, EarlyStoppingConfig)
        if self.lr_scheduler is not None:
            given.update(self.lr_scheduler_settings(self.lr_scheduler))
        return base.model_copy(update=given)

    @staticmethod
    def lr_scheduler_settings(section: LrSchedulerSection) -> dict[str, Any]:
        """KTRDR's scheduler keys as the engine's ``scheduler`` settings."""
        settings: dict[str, Any] = {"scheduler": section.type}
        for name in ("step_size", "gamma", "factor", "patience"):
            value = getattr(section, name)
            if value is not None:
                settings[f"scheduler_{name}"] = value
        return settings
