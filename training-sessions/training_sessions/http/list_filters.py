"""The filters of ``GET .../trainings``, one dependency for both services' lists.

``status``, ``strategy`` (the name), ``symbol``, ``timeframe``, ``tag``,
``created_after`` (inclusive) and ``created_before`` (exclusive): an ISO date or
datetime, read as UTC when it has no offset. A filter left out narrows nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from training_sessions.contract import utc_filter_instant
from training_sessions.errors import InvalidRequestError
from training_sessions.types import SESSION_STATUSES, SessionFilter

_DATE = "an ISO date or datetime (2026-12-01, 2026-12-01T10:00:00Z); no offset means UTC"


def training_filters(
    status: Annotated[
        str | None,
        # Documented as the list of statuses; the refusal of another one names them.
        Query(description="one status", json_schema_extra={"enum": list(SESSION_STATUSES)}),
    ] = None,
    strategy: Annotated[
        str | None, Query(description="the strategy's name", max_length=128)
    ] = None,
    symbol: Annotated[str | None, Query(description="one of its symbols", max_length=64)] = None,
    timeframe: Annotated[
        str | None, Query(description="one of its timeframes", max_length=16)
    ] = None,
    tag: Annotated[str | None, Query(description="one of its tags", max_length=32)] = None,
    created_after: Annotated[datetime | None, Query(description=f"inclusive; {_DATE}")] = None,
    created_before: Annotated[datetime | None, Query(description=f"exclusive; {_DATE}")] = None,
) -> SessionFilter:
    """The list's filters. Raises InvalidRequestError for an unknown status."""
    if status is not None and status not in SESSION_STATUSES:
        raise InvalidRequestError(
            f"unknown status '{status[:40]}'; expected one of {', '.join(SESSION_STATUSES)}"
        )
    return SessionFilter(
        status=status,
        strategy=strategy,
        symbol=symbol,
        timeframe=timeframe,
        tag=tag,
        created_after=utc_filter_instant(created_after, "created_after"),
        created_before=utc_filter_instant(created_before, "created_before"),
    )


TrainingFilters = Annotated[SessionFilter, Depends(training_filters)]
