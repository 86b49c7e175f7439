"""The HTTP contract of a training, shared by the host service and the backend proxy.

Pydantic models only (no FastAPI): the bodies of ``POST .../start``, the status,
performance and list answers, and the error body. Both services use them as
``response_model``, so the two OpenAPI documents describe the same bodies and a
timestamp is always written one way: UTC with a ``Z`` suffix.

A start's ``config`` and an inline ``strategy`` are documented by the engine's own models
(``TrainingOverrides``, ``StrategyDocument``: their JSON Schema, with a real example) and
kept as the client sent them: the session runtime validates them with the same models
when it resolves the request, so the document and the service cannot disagree. Symbols,
timeframes, strategy names and dates carry the patterns the runtime checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    model_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema
from training_engine.strategy import StrategyDocument, TrainingOverrides
from training_engine.strategy.values import DATE_SCHEMA, SAFE_NAME_PATTERN, TIMEFRAME_PATTERN

from training_sessions.errors import InvalidRequestError
from training_sessions.types import (
    RuntimeSettings,
    SessionPerformance,
    SessionPhase,
    SessionStatus,
    SessionView,
    TrainingRequest,
)

TRAINING_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
TrainingId = Annotated[
    str,
    Field(
        pattern=TRAINING_ID_PATTERN,
        description="letters, digits, '.', '_' or '-'; at most 128 characters",
        examples=["nightly-aapl-1h"],
    ),
]


class DescribedBy:
    """A value kept as the client sent it, documented by ``documented``'s JSON Schema.

    The runtime validates it with the same models when it resolves the request (naming a
    bad key as ``config.<key>`` or ``strategy key ...``); here only its JSON type is
    checked: one of ``accepts``, else "Input should be ``expected``".
    """

    def __init__(
        self,
        documented: Any,
        accepts: tuple[type, ...] = (dict,),
        expected: str = "a valid dictionary",
    ) -> None:
        self.documented = documented
        self.accepts = accepts
        self.expected = expected

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self._as_sent, json_schema_input_schema=handler.generate_schema(self.documented)
        )

    def _as_sent(self, value: Any) -> Any:
        if not isinstance(value, self.accepts):
            raise PydanticCustomError(
                "json_type", "Input should be {expected}", {"expected": self.expected}
            )
        return value


# What the runtime accepts, as patterns in the document (the runtime checks them itself,
# with messages naming the field: see training_sessions.requests and strategy.values).
STRATEGY_NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
StrategyName = Annotated[
    str,
    Field(
        json_schema_extra={"pattern": STRATEGY_NAME_PATTERN},
        description="a strategy file's name in the strategies directory, without .yaml",
        examples=["momentum_mlp"],
    ),
]
# The one place the types of an inline strategy and of the overrides are declared.
StrategySpec = Annotated[
    str | dict[str, Any] | None,
    DescribedBy(
        StrategyName | StrategyDocument | None,
        accepts=(str, dict, type(None)),
        expected="a strategy file's name or a strategy object",
    ),
]
OverridesSpec = Annotated[dict[str, Any], DescribedBy(TrainingOverrides)]
SymbolName = Annotated[
    str, Field(json_schema_extra={"pattern": SAFE_NAME_PATTERN}, examples=["AAPL"])
]
TimeframeName = Annotated[
    str, Field(json_schema_extra={"pattern": TIMEFRAME_PATTERN}, examples=["1h"])
]
DateBound = Annotated[
    str,
    Field(
        json_schema_extra=DATE_SCHEMA,
        description="a date (YYYY-MM-DD, years 1700-2199); the end date counts whole",
        examples=["2024-01-31"],
    ),
]

# The largest ``offset`` of a list: beyond it every database answers nothing (or fails).
MAX_LIST_OFFSET = 2**31 - 1
# JSON nested deeper than this is no strategy: refused before anything walks it.
MAX_BODY_DEPTH = 32


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "text may not contain a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text may not contain an unpaired surrogate (not valid UTF-8)"
    return None


def find_unstorable_value(body: Any) -> tuple[str, str] | None:
    """The first value no store or JSON encoder takes: ``(dotted path, problem)``.

    NaN and infinities, NUL characters and lone surrogates (in keys too) cannot be
    written to PostgreSQL nor sent on as JSON, so they are refused where they arrive.
    """
    stack: list[tuple[str, Any, int]] = [("", body, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            return path, f"nested deeper than {MAX_BODY_DEPTH} levels"
        if isinstance(value, float) and not math.isfinite(value):
            return path, f"expected a finite number, got {value!r}"
        if isinstance(value, str) and (problem := _text_problem(value)):
            return path, problem
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and (problem := _text_problem(key)):
                    return child, f"key {problem}"
                stack.append((child, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))
    return None


def _utc_z(value: datetime) -> str:
    # A naive time is a UTC time: that is how the session store keeps them.
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


def utc_filter_instant(instant: datetime | None, name: str) -> datetime | None:
    """A list filter's instant in UTC: one without an offset is a UTC one.

    Raises:
        InvalidRequestError: the instant has no UTC time (year 1 with a positive offset...).
    """
    if instant is None:
        return None
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise InvalidRequestError(
            f"{name} {instant.isoformat()} has no time in UTC (out of the calendar's range)"
        ) from None


UtcTimestamp = Annotated[
    datetime, PlainSerializer(_utc_z, return_type=str, when_used="json-unless-none")
]


def _finite_or_null(value: float | None) -> float | None:
    # JSON has no NaN or Infinity: a diverged metric is written as null, never a failed answer.
    return value if value is None or math.isfinite(value) else None


MetricValue = Annotated[
    float | None, PlainSerializer(_finite_or_null, return_type=float | None, when_used="json")
]


class ServiceIdentity(BaseModel):
    """``GET /`` for an API client: which service answers, and that it is up."""

    service: str = Field(examples=["training-host"])
    version: str
    status: str = Field(examples=["ok"])


class ErrorBody(BaseModel):
    """The body of every error answer of both services."""

    detail: str = Field(description="what went wrong, naming the bad field or value")
    error: str = Field(description="the error's type", examples=["SessionNotFoundError"])


class _StartBody(BaseModel):
    """What both start routes accept; unknown fields are a 422 naming them."""

    model_config = ConfigDict(extra="forbid")

    training_id: TrainingId | None = None
    strategy: StrategySpec = Field(
        default=None,
        description="a strategy file's name (without .yaml) or an inline strategy; "
        "none: the service's default strategy",
    )
    start_date: DateBound | None = None
    end_date: DateBound | None = None
    config: OverridesSpec = Field(
        default_factory=dict,
        description="model.training settings that replace the strategy's (keys left out "
        "keep its values)",
    )
    start_deadline: datetime | None = Field(
        default=None,
        description=(
            "set by the backend proxy: an instant (with offset) after which the caller no "
            "longer waits; a start read later creates nothing (409 StartDeadlinePassedError)"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        found = find_unstorable_value(data)
        if found is not None:
            path, problem = found
            raise PydanticCustomError(
                "unstorable_value", "{path}: {problem}", {"path": path, "problem": problem}
            )
        return data

    def _symbols_and_timeframes(self) -> tuple[list[str] | None, list[str] | None]:
        raise NotImplementedError

    def to_request(self) -> TrainingRequest:
        """The session runtime's request."""
        symbols, timeframes = self._symbols_and_timeframes()
        return TrainingRequest(
            strategy=self.strategy,
            symbols=tuple(symbols) if symbols is not None else None,
            timeframes=tuple(timeframes) if timeframes is not None else None,
            start_date=self.start_date,
            end_date=self.end_date,
            config=dict(self.config),
        )


class StartTrainingBody(_StartBody):
    """``POST .../start``: one symbol/timeframe or the lists; everything optional."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        # Not both spellings of one thing (null counts as absent).
        {"not": {"required": ["symbol", "symbols"], "properties": {
            "symbol": {"type": "string"}, "symbols": {"type": "array"}}}},
        {"not": {"required": ["timeframe", "timeframes"], "properties": {
            "timeframe": {"type": "string"}, "timeframes": {"type": "array"}}}},
    ]})  # fmt: skip

    symbol: SymbolName | None = None
    symbols: list[SymbolName] | None = Field(default=None, min_length=1)
    timeframe: TimeframeName | None = None
    timeframes: list[TimeframeName] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_spelling(self) -> StartTrainingBody:
        if self.symbol is not None and self.symbols is not None:
            raise ValueError("give either 'symbol' or 'symbols', not both")
        if self.timeframe is not None and self.timeframes is not None:
            raise ValueError("give either 'timeframe' or 'timeframes', not both")
        return self

    def _symbols_and_timeframes(self) -> tuple[list[str] | None, list[str] | None]:
        # ``symbol`` is ``symbols=[symbol]``.
        symbols = [self.symbol] if self.symbol is not None else self.symbols
        timeframes = [self.timeframe] if self.timeframe is not None else self.timeframes
        return symbols, timeframes


class StartMultiSymbolBody(_StartBody):
    """``POST .../start-multi-symbol``: ``symbols`` and ``timeframes`` are required lists."""

    symbols: list[SymbolName] = Field(min_length=1)
    timeframes: list[TimeframeName] = Field(min_length=1)

    def _symbols_and_timeframes(self) -> tuple[list[str] | None, list[str] | None]:
        return self.symbols, self.timeframes


class TrainingProgress(BaseModel):
    epoch: int
    total_epochs: int
    batch: int
    total_batches: int
    percent: float
    eta_seconds: MetricValue = Field(
        description="seconds left, estimated from the batches (while an epoch runs) or the "
        "epochs done so far; null before the first batch"
    )


def path_in_answer(path: str | None, folder: Path) -> str | None:
    """``path`` relative to the setting's ``folder``: answers never say where files are kept.

    A path outside ``folder`` (which the runtime never writes) is cut to its name.
    """
    if path is None:
        return None
    candidate = Path(path)
    for base in (Path(folder), Path(folder).resolve()):
        if candidate.is_relative_to(base):
            return candidate.relative_to(base).as_posix()
    return candidate.name


class TrainingStatus(BaseModel):
    """``GET .../{id}/status``: bounded in size however long the run."""

    training_id: str
    status: SessionStatus
    progress: TrainingProgress
    metrics: dict[str, MetricValue] = Field(description="latest values; NaN or infinite: null")
    device: str | None
    created_at: UtcTimestamp
    started_at: UtcTimestamp | None
    finished_at: UtcTimestamp | None
    error: str | None
    model_path: str | None = Field(description="the model folder, relative to models_dir")
    checkpoint_path: str | None = Field(description="the checkpoint, relative to checkpoints_dir")
    resume_count: int
    phase: SessionPhase | None = Field(
        default=None, description="what an active training is doing; null once it is not active"
    )
    stopped_early: bool = Field(default=False, description="early stopping ended the run")
    best_epoch: int | None = Field(
        default=None, description="the epoch with the lowest validation loss so far"
    )
    attempt: int = Field(
        default=0, description="launches so far: 1 for the first, one more per resume; 0 if none"
    )
    node: str | None = Field(default=None, description="the node the last launch ran on")
    node_address: str | None = Field(default=None, description="that node's address")
    stop_requested: bool = Field(
        default=False, description="true in the answer to a stop: the stop was accepted"
    )
    strategy: str | None = Field(
        default=None,
        description="the strategy's name as resolved (the default one's when none was named); "
        "null only for a training stored before names were kept that named none",
    )
    symbols: list[str] | None = None
    timeframes: list[str] | None = None
    tags: list[str] = Field(default_factory=list, description="labels set with PATCH")

    @classmethod
    def from_view(cls, view: SessionView, folders: RuntimeSettings) -> TrainingStatus:
        """The answer for ``view``; its paths relative to ``folders`` (the runtime's)."""
        # The runtime's dataclasses carry the same field names; read them as attributes.
        body = cls.model_validate(view, from_attributes=True)
        paths = {
            "model_path": path_in_answer(view.model_path, folders.models_dir),
            "checkpoint_path": path_in_answer(view.checkpoint_path, folders.checkpoints_dir),
        }
        return body.model_copy(update={**view.request_summary(), **paths})


class TrainingDeleted(BaseModel):
    """``DELETE .../trainings/{id}``: what was removed (its model stays)."""

    training_id: str
    deleted: Literal[True] = True
    files_removed: list[str] = Field(
        description="each as <folder setting>/name: its checkpoint, kept result, log file"
    )


TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
MAX_TAGS = 16


class TagsBody(BaseModel):
    """``PATCH .../trainings/{id}``: the training's tags (they replace the set)."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(
        max_length=MAX_TAGS,
        # The document states each tag's pattern; the validator below names a bad tag.
        json_schema_extra={"items": {"type": "string", "pattern": TAG_PATTERN}},
        description=f"at most {MAX_TAGS}; each 1-32 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit",
        examples=[["nightly", "eurusd"]],
    )

    @model_validator(mode="after")
    def _each_tag_valid(self) -> TagsBody:
        for tag in self.tags:
            if not re.fullmatch(TAG_PATTERN, tag):
                raise ValueError(
                    f"tag {tag[:40]!r} is not 1-32 letters, digits, '.', '_' or '-' "
                    "starting with a letter or digit"
                )
        return self

    def unique_tags(self) -> list[str]:
        """The tags in their order, each once."""
        return list(dict.fromkeys(self.tags))


class StartTrainingResponse(TrainingStatus):
    """The status body plus whether this call created the training."""

    created: bool


class TrainingList(BaseModel):
    items: Sequence[TrainingStatus]
    total: int
    limit: int
    offset: int


class TrainingPerformance(BaseModel):
    """Per-epoch history and, once completed, test metrics against the majority baseline."""

    training_id: str
    status: SessionStatus
    history: list[dict[str, int | MetricValue]]
    test_metrics: dict[str, Any] | None
    baseline_metrics: dict[str, Any] | None
    evaluation: dict[str, Any] | None = Field(
        default=None,
        description=(
            "once completed, what the model's metadata says: `verdict` (beaten only when "
            "better on both metrics, with bootstrap intervals: accuracy and macro-F1 against "
            "the train-majority baseline and a random guess at the train class rates; R2 and "
            "MAE against the train mean for a regression target), `class_shares` per part, "
            "`data_report`, `splits` "
            "(each part's date range per symbol), `weights` (which epoch's weights were kept), "
            "and `folds` for walk-forward runs"
        ),
    )

    @classmethod
    def from_performance(cls, performance: SessionPerformance) -> TrainingPerformance:
        return cls.model_validate(performance, from_attributes=True)


class StrategyList(BaseModel):
    """``GET .../strategies``: what a start's ``strategy`` may name."""

    strategies: list[str] = Field(description="the strategy files' names, sorted")
    default_strategy: str = Field(description="the strategy a start that names none trains")
