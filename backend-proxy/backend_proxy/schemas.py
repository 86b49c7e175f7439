"""Request bodies, compatible with the host service's ``/trainings`` routes.

The proxy may not import ``training_host``, so it models the bodies itself; they
are forwarded to the host as the client sent them, plus the training_id.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The host service's own pattern: an id valid here is valid there.
TRAINING_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class StartTrainingBody(BaseModel):
    """``POST /api/trainings/start``: one symbol/timeframe or the lists, all optional."""

    model_config = ConfigDict(extra="forbid")

    training_id: str | None = Field(default=None, pattern=TRAINING_ID_PATTERN)
    strategy: str | dict[str, Any] | None = None
    symbol: str | None = None
    symbols: list[str] | None = None
    timeframe: str | None = None
    timeframes: list[str] | None = None
    start_date: str | None = None
    end_date: str | None = None
    config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_form_each(self) -> StartTrainingBody:
        if self.symbol is not None and self.symbols is not None:
            raise ValueError("give either 'symbol' or 'symbols', not both")
        if self.timeframe is not None and self.timeframes is not None:
            raise ValueError("give either 'timeframe' or 'timeframes', not both")
        return self

    def forwarded(self) -> dict[str, Any]:
        """The body as sent on to the host (unset fields left out)."""
        return self.model_dump(exclude_none=True)


class StartMultiSymbolBody(StartTrainingBody):
    """``POST /api/trainings/start-multi-symbol``: the lists are required."""

    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
