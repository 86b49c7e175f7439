"""The one interface behind which a training runs: the host service, or this backend's CPU.

The dispatcher picks a :class:`TrainingBackend` once per request (from the routing
table for a known training, from the start decision for a new one) and asks it
everything; nothing above this interface asks where a training runs. Both
implementations answer with ``training_sessions.contract`` models plus the routing
fields (``schemas.Routed*``):

- ``host_backend.HostBackend``: the host service through ``HostClient``; it alone
  knows whether the host answered, what was last seen of a training while it did
  not, which stops wait for it, and which starts it may or may not have taken.
- ``local_backend.LocalBackend``: the session runtime in this process, on CPU.

A host start that certainly created nothing raises :class:`RunLocally`; the
dispatcher then gives the training to the local backend. That is a decision about
a start, made once, never a question asked of every later request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Protocol

from pydantic import ValidationError
from training_sessions.contract import TrainingDeleted, TrainingStatus

from backend_proxy.routing_table import FallbackReason, Route, RoutedTo
from backend_proxy.schemas import (
    RoutedStartResponse,
    RoutedTrainingPerformance,
    RoutedTrainingStatus,
    StartBody,
)


class EventStream(Protocol):
    """A training's Server-Sent Events as bytes; ``aclose`` frees what it holds."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def aclose(self) -> Awaitable[None]: ...


class TrainingBackend(Protocol):
    """Where a training runs; ``route`` is its routing-table row."""

    routed_to: RoutedTo

    async def start(self, claimed: Route, body: StartBody) -> RoutedStartResponse:
        """Start a training whose id the dispatcher has just claimed for this backend."""
        ...

    async def start_again(self, route: Route, body: StartBody) -> RoutedStartResponse:
        """A start naming a training routed here: that training (200), never a new one."""
        ...

    async def status(self, route: Route) -> RoutedTrainingStatus: ...

    async def performance(self, route: Route) -> RoutedTrainingPerformance: ...

    async def stop(self, route: Route) -> RoutedTrainingStatus:
        """Ask it to stop; ``stop_pending`` when the stop is kept to be delivered later."""
        ...

    async def resume(self, route: Route) -> RoutedTrainingStatus: ...

    async def events(self, route: Route, last_event_id: str | None) -> EventStream:
        """Its events after ``last_event_id``; errors (unknown id, bad header) raise here."""
        ...

    async def logs(self, route: Route, tail: int | None) -> str: ...

    async def delete(self, route: Route) -> TrainingDeleted:
        """Remove a finished training's rows and files (its model stays), and its route."""
        ...

    async def set_tags(self, route: Route, tags: list[str]) -> RoutedTrainingStatus:
        """Replace its tags; its status with them."""
        ...

    async def list_item(self, route: Route) -> RoutedTrainingStatus | None:
        """Its entry in the list, from its route (brought up to date before the list is read);
        None if no state of it was ever seen. Never raises: one training must not fail a list.
        """
        ...


class RunLocally(Exception):
    """The host certainly never creates this training (or never will): it runs here instead."""

    def __init__(self, training_id: str, body: StartBody, reason: FallbackReason) -> None:
        self.training_id = training_id
        self.body = body
        self.reason = reason
        super().__init__(f"training {training_id} runs locally: {reason}")


def last_seen(route: Route) -> TrainingStatus | None:
    """The training's state as last seen where it runs; None if none was ever confirmed."""
    if not route.confirmed:
        return None
    try:
        return TrainingStatus.model_validate(route.last_state)
    except ValidationError:
        return None
