"""The proxy's answers: the shared training bodies plus where each training runs.

Requests and the bodies they extend are ``training_sessions.contract``'s, the
host service's own, so a body valid here is valid there and the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field
from training_sessions.contract import (
    ErrorBody,
    StartMultiSymbolBody,
    StartTrainingBody,
    StartTrainingResponse,
    TrainingList,
    TrainingPerformance,
    TrainingStatus,
)

from backend_proxy.routing_table import FallbackReason, RoutedTo

# The body of either start route; which one it is picks the host's route.
StartBody = StartTrainingBody | StartMultiSymbolBody


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

    @classmethod
    def host(cls, *, reachable: bool, stop_pending: bool = False) -> RoutingFields:
        """A host training's: whether the host answered, and whether a stop waits for it."""
        return cls(
            routed_to="host_service",
            fallback_reason=None,
            host_reachable=reachable,
            stop_pending=stop_pending,
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


class RoutedTrainingStatus(TrainingStatus, RoutingFields):
    """A training's status; the last state seen while its host is unreachable."""


class RoutedStartResponse(StartTrainingResponse, RoutingFields):
    """The start answer: the status, ``created`` and the route."""


class RoutedTrainingPerformance(TrainingPerformance, RoutingFields):
    """A training's history and test metrics, with its route."""


class RoutedTrainingList(TrainingList):
    items: Sequence[RoutedTrainingStatus]


Routed = TypeVar("Routed", RoutedTrainingStatus, RoutedStartResponse, RoutedTrainingPerformance)


def routed(model: type[Routed], answer: BaseModel, fields: RoutingFields, **changes: Any) -> Routed:
    """``answer`` (a contract model) with its route and ``changes``, as ``model``.

    The answer's fields are taken as they are (``dict(answer)`` is shallow): nested
    models are not dumped and read again.
    """
    return model(**{**dict(answer), **dict(fields), **changes})


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
