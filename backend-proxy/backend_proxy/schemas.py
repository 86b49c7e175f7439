"""The proxy's answers: the shared training bodies plus where each training runs.

Requests and the bodies they extend are ``training_sessions.contract``'s, the
host service's own, so a body valid here is valid there and the other way round.
The backend adds where a training runs (``RoutingFields``), who started it
(``origin``) and, while its host cannot be asked, what is known of it
(``host_unreachable`` with ``last_known_status``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field
from training_sessions.contract import (
    MAX_LIST_OFFSET,
    ErrorBody,
    StartMultiSymbolBody,
    StartTrainingBody,
    StartTrainingResponse,
    TrainingList,
    TrainingPerformance,
    TrainingStatus,
    UtcTimestamp,
    utc_filter_instant,
)
from training_sessions.models import ModelDetail, ModelSummary
from training_sessions.types import SessionStatus

from backend_proxy.routing_table import FallbackReason, Origin, RoutedTo, RouteFilter

# The body of either start route; which one it is picks the host's route.
StartBody = StartTrainingBody | StartMultiSymbolBody
HOST_UNREACHABLE = "host_unreachable"
# A training's status as the backend answers it: the runtime's, or that its host cannot be asked.
BackendStatus = SessionStatus | Literal["host_unreachable"]
UNREACHABLE_DETAIL = (
    "the training host cannot be reached; this is the last state seen, and it will be "
    "settled when the host returns (a training that was running resumes from its checkpoint)"
)


class RoutingFields(BaseModel):
    """Where a training runs, in every answer about one."""

    routed_to: RoutedTo
    fallback_reason: FallbackReason | None = Field(
        description="why a training runs locally; null for a host training"
    )
    host_reachable: bool | None = Field(
        description="whether the host answered this request; null for a local training"
    )
    stop_pending: bool = Field(description="a stop is kept here until the host is reachable again")
    origin: Origin = Field(
        default="backend",
        description="backend: started through this backend; host: started on the host directly "
        "or by another client",
    )

    @classmethod
    def host(
        cls, *, reachable: bool, stop_pending: bool = False, origin: Origin = "backend"
    ) -> RoutingFields:
        """A host training's: whether the host answered, and whether a stop waits for it."""
        return cls(
            routed_to="host_service",
            fallback_reason=None,
            host_reachable=reachable,
            stop_pending=stop_pending,
            origin=origin,
        )

    @classmethod
    def local(cls, fallback_reason: FallbackReason | None) -> RoutingFields:
        """A local training's: it never waits for the host, whose reachability is moot."""
        return cls(
            routed_to="local",
            fallback_reason=fallback_reason,
            host_reachable=None,
            stop_pending=False,
        )


class HostKnowledge(BaseModel):
    """What the backend knows of a host training its host cannot be asked about."""

    status: BackendStatus = Field(
        description="host_unreachable: the host cannot be asked; last_known_status is what it "
        "last said"
    )
    last_known_status: SessionStatus | None = Field(
        default=None, description="with host_unreachable: the status the host last answered"
    )
    unreachable_since: UtcTimestamp | None = Field(
        default=None, description="with host_unreachable: since when the host has not answered"
    )
    detail: str | None = Field(
        default=None, description="with host_unreachable: that it is settled when the host returns"
    )


# HostKnowledge widens ``status`` by the backend's own ``host_unreachable`` (mypy reads that
# as a conflict between the bases; pydantic takes the first base's field, as meant).
class RoutedTrainingStatus(HostKnowledge, TrainingStatus, RoutingFields):  # type: ignore[misc]
    """A training's status; ``host_unreachable`` with the last state seen while its host is down."""


class RoutedStartResponse(HostKnowledge, StartTrainingResponse, RoutingFields):  # type: ignore[misc]
    """The start answer: the status, ``created`` and the route."""


class RoutedTrainingPerformance(  # type: ignore[misc]
    HostKnowledge, TrainingPerformance, RoutingFields
):
    """A training's history and test metrics, with its route; the last seen while its host is
    down."""


class RoutedTrainingList(TrainingList):
    items: Sequence[RoutedTrainingStatus]


Routed = TypeVar("Routed", RoutedTrainingStatus, RoutedStartResponse, RoutedTrainingPerformance)


def routed(model: type[Routed], answer: BaseModel, fields: RoutingFields, **changes: Any) -> Routed:
    """``answer`` (a contract model) with its route and ``changes``, as ``model``.

    The answer's fields are taken as they are (``dict(answer)`` is shallow): nested
    models are not dumped and read again.
    """
    return model(**{**dict(answer), **dict(fields), **changes})


def unreachable(
    model: type[Routed], answer: BaseModel, fields: RoutingFields, since: datetime
) -> Routed:
    """``answer`` (the last one seen) told as it is: its host cannot be asked since ``since``.

    No ETA: nothing is running that this backend can see.
    """
    last = answer.model_dump().get("status")
    changes: dict[str, Any] = {
        "status": HOST_UNREACHABLE,
        "last_known_status": last if last != HOST_UNREACHABLE else None,
        "unreachable_since": since,
        "detail": UNREACHABLE_DETAIL,
    }
    progress = getattr(answer, "progress", None)
    if progress is not None:
        changes["progress"] = progress.model_copy(update={"eta_seconds": None})
    return routed(model, answer, fields, **changes)


# A filter's text: anything printable (an inline strategy's name too); no control characters.
FilterText = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,128}$")]


class TrainingListQuery(BaseModel):
    """``GET /api/trainings``'s filters and page."""

    status: BackendStatus | None = Field(
        default=None, description="host_unreachable: host trainings while the host is down"
    )
    strategy: FilterText | None = Field(default=None, description="the strategy's name")
    symbol: FilterText | None = Field(default=None, description="trainings on this symbol")
    timeframe: FilterText | None = Field(default=None, description="trainings on this timeframe")
    tag: FilterText | None = Field(default=None, description="trainings with this tag")
    created_after: datetime | None = Field(
        default=None, description="created at or after (ISO date or time; UTC without offset)"
    )
    created_before: datetime | None = Field(
        default=None, description="created before (ISO date or time; UTC without offset)"
    )
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_LIST_OFFSET)

    def to_filter(self) -> RouteFilter:
        return RouteFilter(
            status=self.status,
            strategy=self.strategy,
            symbol=self.symbol,
            timeframe=self.timeframe,
            tag=self.tag,
            created_after=utc_filter_instant(self.created_after, "created_after"),
            created_before=utc_filter_instant(self.created_before, "created_before"),
            limit=self.limit,
            offset=self.offset,
        )


class RoutedModelSummary(ModelSummary):
    """A model of the host or of this backend's fallback runs."""

    routed_to: RoutedTo


class RoutedModelDetail(ModelDetail):
    routed_to: RoutedTo


class RoutedModelList(BaseModel):
    """Models of the host and of the fallback runs, newest first."""

    models: list[RoutedModelSummary]
    total: int = Field(description="models matching the filters, host and local together")
    host_reachable: bool | None = Field(
        description="false: the host could not be asked, so its models are missing here; "
        "null: the host is disabled"
    )


class UnavailableBody(ErrorBody):
    """A 503: the host is unreachable, or a start it may have taken is unconfirmed."""

    training_id: str | None = Field(
        default=None,
        description="only with StartUnconfirmedError: retry the start with this id",
    )
    status: Literal["unknown"] | None = Field(
        default=None,
        description="only with StartUnconfirmedError: whether the host has it is not known yet",
    )
    host_reachable: bool | None = Field(
        default=None, description="only with StartUnconfirmedError: false, the host was not asked"
    )
