"""Which backend answers each training request; knows nothing of HTTP.

A known training is answered by the backend its route names; a new one by the
first choice (the host, or the local runtime while the host is disabled), or by
the local runtime when the host certainly did not take it (``RunLocally``). The
proxy assigns the ``training_id`` and claims it in the routing table before any
backend sees the start, so a repeat of an id always goes where the first went.
A host training started elsewhere (``origin="host"``) is answered like the others,
but a start never adopts its id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import uuid4

from training_sessions.contract import TrainingDeleted
from training_sessions.errors import SessionConflictError

from backend_proxy.errors import TrainingNotFoundError, TrainingNotOwnedError
from backend_proxy.host_backend import HostBackend
from backend_proxy.host_listing import HostListing
from backend_proxy.local_backend import LocalBackend
from backend_proxy.route_store import RouteStore
from backend_proxy.routing_table import Route, RoutedTo, RouteFilter
from backend_proxy.schemas import (
    RoutedStartResponse,
    RoutedTrainingList,
    RoutedTrainingPerformance,
    RoutedTrainingStatus,
    StartBody,
)
from backend_proxy.training_backend import EventStream, RunLocally, TrainingBackend

# A list refreshes the host's trainings first unless that was done this recently.
LIST_REFRESH_MAX_AGE_SECONDS = 1.0

Answer = TypeVar("Answer")
Call = Callable[[TrainingBackend, Route], Awaitable[Answer]]


class TrainingDispatcher:
    """Sends each training request to the backend it runs on."""

    def __init__(
        self,
        host: HostBackend,
        local: LocalBackend,
        routes: RouteStore,
        listing: HostListing,
        *,
        host_enabled: bool,
    ) -> None:
        self.host = host
        self.local = local
        self._routes = routes
        self._listing = listing
        self._host_enabled = host_enabled
        self._backends: dict[RoutedTo, TrainingBackend] = {"host_service": host, "local": local}
        self._first_choice: TrainingBackend = host if host_enabled else local

    async def start(self, body: StartBody) -> RoutedStartResponse:
        """Start a training (``created``), or answer the one this id already names."""
        training_id = body.training_id or uuid4().hex
        # The deadline is the proxy's to set, never the client's.
        body = body.model_copy(update={"training_id": training_id, "start_deadline": None})
        route, claimed = await self._route_for_start(training_id)
        if not claimed and route.origin == "host":
            raise TrainingNotOwnedError(training_id)
        if not claimed:
            return await self._ask(route, lambda backend, known: backend.start_again(known, body))
        # Until this request has its answer (the host's, or a local run's after RunLocally),
        # settling an ambiguous start must not take it over and make this answer a repeat.
        with self.host.starts.deciding(training_id):
            try:
                return await self._first_choice.start(route, body)
            except RunLocally as start:
                return await self.local.take_over(start)

    async def status(self, training_id: str) -> RoutedTrainingStatus:
        """The training's state from where it runs (the last one seen if the host is down)."""
        return await self._on(training_id, lambda backend, route: backend.status(route))

    async def performance(self, training_id: str) -> RoutedTrainingPerformance:
        return await self._on(training_id, lambda backend, route: backend.performance(route))

    async def stop(self, training_id: str) -> RoutedTrainingStatus:
        """Stop a training; ``stop_pending`` when it is kept until the host is back."""
        return await self._on(training_id, lambda backend, route: backend.stop(route))

    async def resume(self, training_id: str) -> RoutedTrainingStatus:
        """Resume a failed, cancelled or interrupted training where it runs."""
        return await self._on(training_id, lambda backend, route: backend.resume(route))

    async def events(self, training_id: str, last_event_id: str | None) -> EventStream:
        """The training's Server-Sent Events from where it runs."""
        return await self._on(
            training_id, lambda backend, route: backend.events(route, last_event_id)
        )

    async def log(self, training_id: str, tail: int | None) -> str:
        return await self._on(training_id, lambda backend, route: backend.logs(route, tail))

    async def delete(self, training_id: str) -> TrainingDeleted:
        """Remove a finished training's rows and files where it runs (its model stays)."""
        return await self._on(training_id, lambda backend, route: backend.delete(route))

    async def set_tags(self, training_id: str, tags: list[str]) -> RoutedTrainingStatus:
        return await self._on(training_id, lambda backend, route: backend.set_tags(route, tags))

    async def list_trainings(self, wanted: RouteFilter) -> RoutedTrainingList:
        """Every training, host (started here or elsewhere) and local, newest first.

        The routing table is brought up to date first (the host's list mirrored, local
        trainings in flight read again), then one query filters, pages and counts it.
        """
        await self.refresh_host_listing(LIST_REFRESH_MAX_AGE_SECONDS)
        await self.local.refresh_in_flight()
        unreachable = self.host.unreachable_since is not None
        wanted = dataclasses.replace(wanted, host_unreachable=unreachable)
        routes, total = await self._routes.list_routes(wanted)
        items = [await self._backends[route.routed_to].list_item(route) for route in routes]
        known = [item for item in items if item is not None]
        return RoutedTrainingList(
            items=known, total=total, limit=wanted.limit, offset=wanted.offset
        )

    async def refresh_host_listing(self, max_age_seconds: float = 0.0) -> bool:
        """Mirror the host's trainings into the routing table; False when it cannot be listed."""
        if not self._host_enabled:
            return False
        return await self._listing.refresh(max_age_seconds)

    async def training_counts(self) -> dict[tuple[str, str, str], int]:
        """Trainings by (routed_to, origin, status) as the list shows them now."""
        unreachable = self.host.unreachable_since is not None
        return await self._routes.count_by_status(host_unreachable=unreachable)

    async def deliver_pending_stops(self) -> int:
        """Send the stops kept while the host was down; returns how many were delivered."""
        return await self.host.deliver_pending_stops()

    async def resolve_unconfirmed_starts(self) -> int:
        """Settle ambiguous host starts whose deadline has passed; returns how many.

        The host has it: confirmed. The host answers 404 after the deadline: it can no
        longer create it, so it runs locally. Unreachable again: the next round retries.
        """
        resolved = 0
        for route in await self._routes.unconfirmed_host_routes():
            try:
                if await self.host.starts.settle(route) is not None:
                    resolved += 1
            except RunLocally as start:
                await self.local.take_over(start)
                resolved += 1
        return resolved

    async def _on(self, training_id: str, call: Call[Answer]) -> Answer:
        route = await self._routes.get(training_id)
        if route is None and self._host_enabled:
            route = await self.host.find(training_id)  # started on the host, not seen yet
        if route is None:
            raise TrainingNotFoundError(training_id)
        return await self._ask(route, call)

    async def _ask(self, route: Route, call: Call[Answer]) -> Answer:
        """``call`` on the route's backend; again on the local one if the host gave it up."""
        try:
            return await call(self._backends[route.routed_to], route)
        except RunLocally as start:
            moved = await self.local.take_over(start)
            local_route = await self._routes.get(moved.training_id)
            assert local_route is not None  # take_over has just written it
            return await call(self.local, local_route)

    async def _route_for_start(self, training_id: str) -> tuple[Route, bool]:
        """The id's route, and whether this start has just claimed it for the first choice.

        Of two concurrent starts of one id exactly one claims it; the other becomes a
        repeat of it (one training, two 2xx answers).
        """
        known = await self._routes.get(training_id)
        if known is not None:
            return known, False
        first = self._first_choice.routed_to
        claimed = await self._routes.claim(
            training_id,
            first,
            fallback_reason="disabled" if first == "local" else None,
            last_state={"training_id": training_id, "status": "unknown"},
        )
        if claimed is not None:
            return claimed, True
        known = await self._routes.get(training_id)
        if known is None:  # claimed and given up again in between
            raise SessionConflictError(
                f"another start of '{training_id}' was just refused; retry the start"
            )
        return known, False
