"""What a session trains, resolved once at submit and stored with it.

A :class:`SessionJob` is the strategy exactly as the engine will train it (the
validated ``StrategyConfig`` with every override applied: the request's ``config``,
the resolved device and the seed, the symbols and the timeframes), the document it was
parsed from (``strategy.raw``, made JSON-safe), the overrides as asked and the dates.

It is a pydantic model: its JSON form (``model_dump(mode="json")``) is what the
``training_sessions.job`` column holds, and :func:`load_stored_job` reads it back by
deserialising the stored config. Launch and resume never parse the strategy document
again nor read a strategy file, so the job trained after a restart equals the one
accepted at submit, whatever happened to ``strategies_dir``, and the checkpoint still
matches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, field_serializer
from training_engine.strategy import StrategyConfig, parse_strategy, with_overrides

JOB_FORMAT: Final = 2
# Format 1 kept the document and the overrides only: it is parsed once, at its launch.
PARSED_AT_LAUNCH_FORMAT = 1


def _json_value(value: Any) -> Any:
    # YAML reads `created: 2024-01-31` as a date; JSON keeps it as the ISO string.
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return str(value)


def json_safe(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a strategy document that survives a JSON column unchanged."""
    safe: dict[str, Any] = json.loads(json.dumps(dict(document), default=_json_value))
    return safe


class SessionJob(BaseModel):
    """A validated training, complete and self-contained; build it with :meth:`of`."""

    model_config = ConfigDict(frozen=True)

    format: Literal[2] = JOB_FORMAT
    strategy: StrategyConfig
    # The request's ``config`` plus the device resolved and the seed pinned at submit.
    training: dict[str, Any]
    start_date: str | None = None
    end_date: str | None = None

    @classmethod
    def of(
        cls,
        strategy: StrategyConfig,
        *,
        training: Mapping[str, Any],
        start_date: str | None,
        end_date: str | None,
    ) -> SessionJob:
        """The job of a strategy resolved at submit (its overrides already applied)."""
        document = json_safe(strategy.raw)
        return cls(
            strategy=strategy.model_copy(update={"raw": document}),
            training=json_safe(training),
            start_date=start_date,
            end_date=end_date,
        )

    @field_serializer("strategy")
    def _strategy_with_document(self, strategy: StrategyConfig) -> dict[str, Any]:
        # ``raw`` (the document) is left out of a config's own dump; the job keeps it.
        return {**strategy.model_dump(mode="json"), "raw": dict(strategy.raw)}

    @property
    def strategy_name(self) -> str:
        return self.strategy.name

    @property
    def document(self) -> Mapping[str, Any]:
        """The strategy as the file or the inline object said it, JSON-safe."""
        return self.strategy.raw

    @property
    def device(self) -> str:
        """The device resolved at submit (``cpu``, ``cuda:0``, ``mps``)."""
        return self.strategy.training.device


def load_stored_job(data: Mapping[str, Any]) -> SessionJob:
    """The job stored with a session, as accepted at submit.

    Raises:
        ValueError: the stored form is of an unknown format (or does not load).
        StrategyConfigError: a format-1 job whose document no longer validates.
    """
    stored_format = data.get("format")
    if stored_format == JOB_FORMAT:
        return SessionJob.model_validate(data)
    if stored_format == PARSED_AT_LAUNCH_FORMAT:
        return _parse_format_1(data)
    raise ValueError(f"stored job has format {stored_format!r}, expected {JOB_FORMAT}")


def _parse_format_1(data: Mapping[str, Any]) -> SessionJob:
    """A job stored before the config was: its document and overrides, parsed once."""
    strategy = data["strategy"]
    parsed = parse_strategy(strategy["document"], default_name=strategy["name"])
    resolved = with_overrides(
        parsed,
        training=data["training"],
        symbols=tuple(data["symbols"]),
        timeframes=tuple(data["timeframes"]),
    )
    return SessionJob.of(
        resolved,
        training=data["training"],
        start_date=data["start_date"],
        end_date=data["end_date"],
    )
