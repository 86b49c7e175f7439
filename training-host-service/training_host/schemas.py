"""Request and response bodies of the service's own API (``/trainings``).

Request models forbid unknown fields, so a misspelt key is a 422 naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from training_sessions.types import (
    SessionPerformance,
    SessionStatus,
    SessionView,
    TrainingRequest,
)

TRAINING_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class StartTrainingBody(BaseModel):
    """``POST /trainings/start``: one or more symbols and timeframes, all optional."""

    model_config = ConfigDict(extra="forbid")

    training_id: str | None = Field(default=None, pattern=TRAINING_ID_PATTERN)
    strategy: str | dict[str, Any] | None = Field(
        default=None, description="strategy file name (without .yaml) or an inline strategy"
    )
    symbol: str | None = None
    symbols: list[str] | None = Field(default=None, min_length=1)
    timeframe: str | None = None
    timeframes: list[str] | None = Field(default=None, min_length=1)
    start_date: str | None = None
    end_date: str | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="training overrides")

    @model_validator(mode="after")
    def _one_spelling(self) -> StartTrainingBody:
        if self.symbol is not None and self.symbols is not None:
            raise ValueError("give either 'symbol' or 'symbols', not both")
        if self.timeframe is not None and self.timeframes is not None:
            raise ValueError("give either 'timeframe' or 'timeframes', not both")
        return self

    def to_request(self) -> TrainingRequest:
        """The engine's request; ``symbol`` becomes ``symbols=(symbol,)``."""
        symbols = [self.symbol] if self.symbol is not None else self.symbols
        timeframes = [self.timeframe] if self.timeframe is not None else self.timeframes
        return TrainingRequest(
            strategy=self.strategy,
            symbols=tuple(symbols) if symbols is not None else None,
            timeframes=tuple(timeframes) if timeframes is not None else None,
            start_date=self.start_date,
            end_date=self.end_date,
            config=dict(self.config),
        )


class StartMultiSymbolBody(BaseModel):
    """``POST /trainings/start-multi-symbol``: symbols and timeframes are required lists."""

    model_config = ConfigDict(extra="forbid")

    training_id: str | None = Field(default=None, pattern=TRAINING_ID_PATTERN)
    strategy: str | dict[str, Any] | None = None
    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
    start_date: str | None = None
    end_date: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)

    def to_request(self) -> TrainingRequest:
        return TrainingRequest(
            strategy=self.strategy,
            symbols=tuple(self.symbols),
            timeframes=tuple(self.timeframes),
            start_date=self.start_date,
            end_date=self.end_date,
            config=dict(self.config),
        )


class ProgressBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    total_epochs: int
    batch: int
    total_batches: int
    percent: float
    eta_seconds: float | None


class TrainingStatusBody(BaseModel):
    """``GET /trainings/{id}/status``: bounded in size however long the run."""

    training_id: str
    status: SessionStatus
    progress: ProgressBody
    metrics: dict[str, float | None]
    device: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    model_path: str | None
    checkpoint_path: str | None
    resume_count: int
    strategy: str | None = Field(default=None, description="null: the default strategy")
    symbols: list[str] | None = None
    timeframes: list[str] | None = None

    @classmethod
    def from_view(cls, view: SessionView) -> TrainingStatusBody:
        # The engine's dataclasses carry the same field names; read them as attributes.
        body = cls.model_validate(view, from_attributes=True)
        return body.model_copy(update=view.request_summary())


class StartTrainingResponse(TrainingStatusBody):
    """The status body plus whether this call created the training."""

    created: bool


class TrainingListBody(BaseModel):
    items: list[TrainingStatusBody]
    total: int
    limit: int
    offset: int


class PerformanceBody(BaseModel):
    training_id: str
    status: SessionStatus
    history: list[dict[str, float | int]]
    test_metrics: dict[str, Any] | None
    baseline_metrics: dict[str, Any] | None

    @classmethod
    def from_performance(cls, perf: SessionPerformance) -> PerformanceBody:
        return cls.model_validate(perf, from_attributes=True)
