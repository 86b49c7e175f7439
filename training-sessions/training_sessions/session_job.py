"""What a session trains, resolved once at submit and stored with it.

A :class:`SessionJob` keeps the strategy as its document (what the file or the
inline object said, made JSON-safe) plus everything applied on top of it: the
``model.training`` overrides (the request's ``config``, the resolved device and
the seed), the symbols, the timeframes and the dates. Its strategy is always
parsed from that stored form, so the job rebuilt from the database at launch or
at a resume is equal to the one accepted at submit, whatever happens to the
files under ``strategies_dir`` in between, and the checkpoint still matches.

:meth:`SessionJob.to_dict` and :meth:`SessionJob.from_dict` are the one place
the stored form is written and read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from training_engine.strategy import StrategyConfig, parse_strategy, with_overrides

JOB_FORMAT = 1


def _json_value(value: Any) -> Any:
    # YAML reads `created: 2024-01-31` as a date; JSON keeps it as the ISO string.
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return str(value)


def json_safe(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a strategy document that survives a JSON column unchanged."""
    safe: dict[str, Any] = json.loads(json.dumps(dict(document), default=_json_value))
    return safe


@dataclass(frozen=True, slots=True)
class SessionJob:
    """A validated training, complete and self-contained; build it with :meth:`build`."""

    strategy_name: str
    document: dict[str, Any]
    training: dict[str, Any]
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    start_date: str | None
    end_date: str | None
    strategy: StrategyConfig

    @classmethod
    def build(
        cls,
        *,
        strategy_name: str,
        document: Mapping[str, Any],
        training: Mapping[str, Any],
        symbols: tuple[str, ...] | list[str],
        timeframes: tuple[str, ...] | list[str],
        start_date: str | None,
        end_date: str | None,
    ) -> SessionJob:
        """Parse the document and apply the overrides, exactly as :meth:`from_dict` does.

        Raises:
            StrategyConfigError: the document or an override does not validate.
        """
        safe_document = json_safe(document)
        safe_training = json_safe(training)
        parsed = parse_strategy(safe_document, default_name=strategy_name)
        strategy = with_overrides(
            parsed, training=safe_training, symbols=tuple(symbols), timeframes=tuple(timeframes)
        )
        return cls(
            strategy_name=strategy_name,
            document=safe_document,
            training=safe_training,
            symbols=tuple(symbols),
            timeframes=tuple(timeframes),
            start_date=start_date,
            end_date=end_date,
            strategy=strategy,
        )

    @property
    def device(self) -> str:
        """The device resolved at submit (``cpu``, ``cuda:0``, ``mps``)."""
        return self.strategy.training.device

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form stored in ``training_sessions.job``."""
        return {
            "format": JOB_FORMAT,
            "strategy": {"name": self.strategy_name, "document": self.document},
            "training": dict(self.training),
            "symbols": list(self.symbols),
            "timeframes": list(self.timeframes),
            "start_date": self.start_date,
            "end_date": self.end_date,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionJob:
        """Rebuild a stored job; its strategy equals the one accepted at submit.

        Raises:
            ValueError: the stored form is of an unknown format.
            StrategyConfigError: the stored strategy no longer validates.
        """
        if data.get("format") != JOB_FORMAT:
            raise ValueError(f"stored job has format {data.get('format')!r}, expected {JOB_FORMAT}")
        strategy = data["strategy"]
        return cls.build(
            strategy_name=strategy["name"],
            document=strategy["document"],
            training=data["training"],
            symbols=data["symbols"],
            timeframes=data["timeframes"],
            start_date=data["start_date"],
            end_date=data["end_date"],
        )
