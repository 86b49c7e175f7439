"""The validated strategy the engine reads: frozen pydantic models, and the only defaults.

These are what ``parse_strategy`` returns and what artifacts store. Their fields carry the
value types of ``values``; names that must match a registry (model type, activation) are
checked where a strategy document is read (``document``), so code and tests can build a
``ModelConfig`` for any type and let ``build_model`` refuse it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from training_engine.strategy.names import (
    BAR_TIMESTAMPS,
    CLASS_WEIGHTINGS,
    EVALUATION_METHODS,
    LABEL_CLASSES,
    LABEL_SOURCES,
    LOSSES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULERS,
    SPLIT_MODES,
    VOL_METHODS,
)
from training_engine.strategy.values import (
    BatchSize,
    Count,
    DeviceName,
    Dropout,
    Epochs,
    Flag,
    Fraction,
    LayerCount,
    LayerSizes,
    Lookback,
    NonNegative,
    Positive,
    Real,
    Seed,
    Share,
    ZigzagThreshold,
    choice,
    enum_of,
    refuse,
)


class EngineModel(BaseModel):
    """Immutable; keys it does not know are dropped (documents keep them, see ``document``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def _without_empty(data: Any, *keys: str) -> Any:
    """``data`` without ``keys`` where they are empty (None, no entries): keys added since
    artifacts were first written, so a strategy that does not use them dumps as it did."""
    if isinstance(data, dict):
        for key in keys:
            if key in data and not data[key]:
                del data[key]
    return data


class IndicatorSpec(EngineModel):
    """One indicator: its KTRDR registry type (``rsi``), parameters, source and feature id.

    ``data_source``: a ``context_data`` source id (``GBPUSD``, ``fred_DGS2``): the indicator
    runs on that series, aligned onto the symbol's bars, instead of the symbol's own bars.
    """

    feature_id: str
    type: str
    params: Mapping[str, bool | int | float | str]
    source: str = "close"
    data_source: str | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_empty(handler(self), "data_source")


class ContextSource(EngineModel):
    """One ``context_data`` entry (KTRDR v3): a series beside the traded symbols.

    ``ib``: another instrument's bars (``symbol``, ``timeframe``); ``fred``: FRED series
    (``series``); ``cftc_cot``: a CFTC Commitments of Traders report (``report``, a
    currency code). Indicators read it through ``data_source`` (:attr:`source_ids`).
    """

    provider: str
    symbol: str | None = None
    timeframe: str | None = None
    series: tuple[str, ...] = ()
    report: str | None = None
    alignment: str = "forward_fill"

    @property
    def source_ids(self) -> tuple[str, ...]:
        """KTRDR's names for what the entry gives: ``ib`` its symbol; ``fred``
        ``fred_{id}`` per series and ``yield_spread_{a}_{b}`` (a - b) of the first two;
        ``cftc_cot`` ``cot_{report}_net_pos`` and ``cot_{report}_net_pct``."""
        if self.provider == "ib":
            return (str(self.symbol),)
        if self.provider == "fred":
            ids = tuple(f"fred_{series}" for series in self.series)
            if len(self.series) >= 2:
                ids += (f"yield_spread_{self.series[0]}_{self.series[1]}",)
            return ids
        return (f"cot_{self.report}_net_pos", f"cot_{self.report}_net_pct")


class FuzzySetSpec(EngineModel):
    """A membership function over one indicator output (the group's key names which).

    ``transform``: ``price_ratio:<close|open|high|low>`` feeds ``price / value`` instead
    of the value (KTRDR's ``input_transform``, and its SMA/EMA rule of v1/v2 files).
    ``group``: the fuzzy group's name in the file (what ``nn_inputs`` refer to).
    """

    name: str
    type: str
    parameters: tuple[float, ...]
    transform: str | None = None
    group: str | None = None


class NNInput(EngineModel):
    """One ``nn_inputs`` entry: a fuzzy group's memberships or a raw indicator output."""

    fuzzy_set: str | None = None
    raw_indicator: str | None = None
    timeframes: tuple[str, ...] | None = None  # None: all
    normalization: str = "none"


class FeatureConfig(EngineModel):
    """``model.features``: how many bars each sample sees and how features are scaled."""

    lookback_periods: Lookback = 1
    include_price_context: Flag = False
    scale_features: Flag = True


class ModelConfig(EngineModel):
    """Network shape. ``hidden_layers`` sizes the MLP, and the recurrent/attention width."""

    type: str = "mlp"
    hidden_layers: LayerSizes = (64, 32)
    activation: str = "relu"
    dropout: Dropout = 0.2
    num_layers: LayerCount = 1
    num_heads: Count = 4


class EarlyStoppingConfig(EngineModel):
    """``model.training.early_stopping``; ``false`` in a file stands for ``enabled: false``."""

    enabled: Flag = True
    patience: Count = 10
    min_delta: NonNegative = 0.0


def early_stopping_form(value: Any) -> Any:
    """``early_stopping: false`` stands for ``{enabled: false}``."""
    return {"enabled": value} if isinstance(value, bool) else value


def _precision_form(value: Any) -> Any:
    # KTRDR files write mixed_precision as a switch.
    return "off" if value is False else "auto" if value is True else value


def _clip_form(value: Any) -> Any:
    return None if value in (None, 0) else value


OptimizerName = Annotated[
    str,
    BeforeValidator(choice(lambda: OPTIMIZERS)),
    Field(json_schema_extra=enum_of(lambda: OPTIMIZERS)),
]
SchedulerName = Annotated[
    str,
    BeforeValidator(choice(lambda: SCHEDULERS)),
    BeforeValidator(lambda value: "none" if value is None else value),
    Field(json_schema_extra=enum_of(lambda: SCHEDULERS)),
]
Precision = Annotated[
    str,
    BeforeValidator(choice(lambda: PRECISIONS)),
    BeforeValidator(_precision_form),
    Field(json_schema_extra=enum_of(lambda: PRECISIONS)),
]
LabelSource = Annotated[
    str,
    BeforeValidator(choice(lambda: LABEL_SOURCES)),
    Field(json_schema_extra=enum_of(lambda: LABEL_SOURCES)),
]
LossName = Annotated[
    str, BeforeValidator(choice(lambda: LOSSES)), Field(json_schema_extra=enum_of(lambda: LOSSES))
]
VolMethod = Annotated[
    str,
    BeforeValidator(choice(lambda: VOL_METHODS)),
    Field(json_schema_extra=enum_of(lambda: VOL_METHODS)),
]
ClassWeighting = Annotated[
    str,
    BeforeValidator(choice(lambda: CLASS_WEIGHTINGS)),
    BeforeValidator(lambda value: "none" if value is None or value is False else value),
    Field(json_schema_extra=enum_of(lambda: CLASS_WEIGHTINGS)),
]


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise refuse(f"expected a timezone name such as America/New_York, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"unknown timezone {value!r}; use an IANA name such as America/New_York"
        raise refuse(message) from None
    return value


TimezoneName = Annotated[
    str,
    BeforeValidator(_timezone),
    Field(json_schema_extra=enum_of(lambda: sorted(available_timezones()))),
]
BarTimestamp = Annotated[
    str,
    BeforeValidator(choice(lambda: BAR_TIMESTAMPS)),
    Field(json_schema_extra=enum_of(lambda: BAR_TIMESTAMPS)),
]
EvaluationMethod = Annotated[
    str,
    BeforeValidator(choice(lambda: EVALUATION_METHODS)),
    Field(json_schema_extra=enum_of(lambda: EVALUATION_METHODS)),
]
SplitMode = Annotated[
    str,
    BeforeValidator(choice(lambda: SPLIT_MODES)),
    Field(json_schema_extra=enum_of(lambda: SPLIT_MODES)),
]
GradientClip = Annotated[Positive | None, BeforeValidator(_clip_form)]
EarlyStopping = Annotated[EarlyStoppingConfig, BeforeValidator(early_stopping_form)]


class TrainingSettings(EngineModel):
    """``model.training`` in the strategy file; also what service ``config`` overrides."""

    learning_rate: Positive = 1e-3
    batch_size: BatchSize = 32
    epochs: Epochs = 20
    optimizer: OptimizerName = "adam"
    weight_decay: NonNegative = 0.0
    momentum: Fraction = 0.9
    scheduler: SchedulerName = "none"
    scheduler_step_size: Count | None = None
    scheduler_gamma: Positive | None = None
    scheduler_factor: Positive | None = None
    scheduler_patience: Count | None = None
    early_stopping: EarlyStopping = EarlyStoppingConfig()
    gradient_clip: GradientClip = 1.0
    gradient_accumulation_steps: Count = 1
    mixed_precision: Precision = "auto"
    seed: Seed = 42
    loss: LossName | None = None
    focal_gamma: NonNegative = 2.0
    huber_delta: Positive = 0.01
    deterministic: Flag = False
    compile: Flag = False
    device: DeviceName = "auto"
    # The share of the device's memory this run may allocate (KTRDR's memory_fraction);
    # None: whatever is free. Several sessions on one GPU each take their share.
    memory_fraction: Share | None = None
    class_weights: ClassWeighting = "balanced"


class LabelConfig(EngineModel):
    """``training.labels``: KTRDR's label sources, their keys and KTRDR's defaults.

    ``zigzag``: segment labels; ``forward_return``: a regression target;
    ``triple_barrier`` (+ sample weights); ``regime`` and ``multi_scale_regime``:
    KTRDR's multi-scale regimes (4 classes); ``context``: bullish/bearish/neutral;
    ``lookahead_move``: the engine's earlier fixed-lookahead rule. ``horizon`` left
    out takes the source's default (forward_return 20, context 5).
    """

    source: LabelSource = "zigzag"
    zigzag_threshold: ZigzagThreshold = 0.03
    label_lookahead: Count = 20
    horizon: Count | None = None
    threshold: Fraction = 0.01
    bullish_threshold: Real = 0.005
    bearish_threshold: Real = -0.005
    pt_multiplier: Positive = 2.0
    sl_multiplier: Positive = 1.5
    max_holding_period: Count = 50
    vol_span: Count = 50
    vol_method: VolMethod = "atr"
    cusum_threshold: NonNegative | None = None
    cusum_multiplier: Positive = 0.5
    compute_weights: Flag = False
    macro_atr_mult: Positive = 3.0
    micro_atr_mult: Positive = 1.0
    atr_period: Count = 14
    vol_lookback: Count = 120
    vol_crisis_threshold: Positive = 2.0
    progression_tolerance: Fraction = 0.5

    @property
    def task(self) -> str:
        """``regression`` for forward returns, else ``classification``."""
        return "regression" if self.source == "forward_return" else "classification"

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes in label order (empty for a regression target)."""
        return LABEL_CLASSES[self.source]

    @property
    def forward_horizon(self) -> int:
        """``horizon``, or the source's KTRDR default."""
        return self.horizon or (20 if self.source == "forward_return" else 5)


class DataSplit(EngineModel):
    """``training.data_split``: shares of the bars for training, validation and test."""

    train: Fraction = 0.6
    validation: Fraction = 0.2
    test: Fraction = 0.2
    # calendar: every symbol's parts are cut at the same dates; per_symbol: each on its own.
    mode: SplitMode = "calendar"


class EvaluationConfig(EngineModel):
    """``evaluation``: one train/validation/test split, or K walk-forward folds."""

    method: EvaluationMethod = "single_split"
    folds: Count = 3


class StrategyConfig(EngineModel):
    """Everything the engine reads from a strategy file, validated."""

    name: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    base_timeframe: str
    indicators: tuple[IndicatorSpec, ...]
    fuzzy_sets: Mapping[str, tuple[FuzzySetSpec, ...]]
    model: ModelConfig
    features: FeatureConfig
    training: TrainingSettings
    labels: LabelConfig
    data_split: DataSplit
    nn_inputs: tuple[NNInput, ...] = ()
    output_format: str = "classification"
    start_date: str | None = None
    end_date: str | None = None
    # How the data files stamp bars (training_data.bar_timestamp / timezone, see bar_times).
    evaluation: EvaluationConfig = EvaluationConfig()
    bar_timestamp: BarTimestamp = "open"
    timezone: TimezoneName = "UTC"
    raw: Mapping[str, Any] = Field(default_factory=dict, repr=False, exclude=True)
    ignored_keys: tuple[str, ...] = ()
    context_data: tuple[ContextSource, ...] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_empty(handler(self), "context_data")

    @property
    def context_sources(self) -> dict[str, ContextSource]:
        """Each ``data_source`` id the indicators may name -> the entry that gives it."""
        return {sid: entry for entry in self.context_data for sid in entry.source_ids}
