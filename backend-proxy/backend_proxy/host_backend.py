"""The host backend: trainings on the training host service, and what this backend knows
of them while the host cannot be asked.

Starts (never lost, never run twice) are ``host_starts.HostStarts``'s. While the
host is unreachable, status answers the last state seen and a stop is kept in the
routing table until :meth:`HostBackend.deliver_pending_stops` sends it. Every such
answer is built in :meth:`HostBackend._while_unreachable`, the one place that says
what is known of a host training the host cannot be asked about.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from training_sessions.contract import TrainingStatus

from backend_proxy.errors import (
    HostConnectionsBusyError,
    HostRejectedError,
    HostTrainingNotFoundError,
    HostUnavailableError,
    StartUnconfirmedError,
)
from backend_proxy.event_relay import RelayedEvents
from backend_proxy.host_client import HostClient
from backend_proxy.host_starts import HostStarts, stored
from backend_proxy.metrics import ProxyMetrics
from backend_proxy.route_store import RouteStore
from backend_proxy.routing_table import Route, RoutedTo
from backend_proxy.schemas import (
    RoutedStartResponse,
    RoutedTrainingPerformance,
    RoutedTrainingStatus,
    RoutingFields,
    StartBody,
    routed,
)
from backend_proxy.training_backend import EventStream, RunLocally, last_seen

logger = logging.getLogger(__name__)


class HostBackend:
    """A :class:`~backend_proxy.training_backend.TrainingBackend` on the host service."""

    routed_to: RoutedTo = "host_service"

    def __init__(
        self, client: HostClient, starts: HostStarts, routes: RouteStore, metrics: ProxyMetrics
    ) -> None:
        self._client = client
        self.starts = starts
        self._routes = routes
        self._metrics = metrics
        self._background: set[asyncio.Task[Any]] = set()

    async def start(self, claimed: Route, body: StartBody) -> RoutedStartResponse:
        answer = await self.starts.start(claimed, body)
        return routed(RoutedStartResponse, answer, RoutingFields.host(reachable=True))

    async def start_again(self, route: Route, body: StartBody) -> RoutedStartResponse:
        try:
            answer = await self.starts.send_again(route, body)
        except HostUnavailableError as exc:
            known = self._while_unreachable(route, exc)
            return RoutedStartResponse(**dict(known), created=False)
        return routed(RoutedStartResponse, answer, _reachable(route))

    async def status(self, route: Route) -> RoutedTrainingStatus:
        try:
            state = await self._client.status(route.training_id)
        except HostUnavailableError as exc:
            return self._while_unreachable(route, exc)
        except HostTrainingNotFoundError as exc:
            if route.confirmed:
                raise
            # The host lacks an ambiguous start: final only once its deadline has passed.
            settled = await self.starts.settle(route)
            if settled is None:
                raise StartUnconfirmedError(route.training_id) from exc
            state = settled
        self._remember(route.training_id, state)
        return routed(RoutedTrainingStatus, state, _reachable(route))

    async def performance(self, route: Route) -> RoutedTrainingPerformance:
        performance = await self._client.performance(route.training_id)
        return routed(RoutedTrainingPerformance, performance, _reachable(route))

    async def stop(self, route: Route) -> RoutedTrainingStatus:
        try:
            state = await self._client.stop(route.training_id)
        except HostUnavailableError as exc:
            known = self._while_unreachable(route, exc)
            await self._routes.update(route.training_id, stop_pending=True)
            return known.model_copy(update={"stop_requested": True, "stop_pending": True})
        await self._routes.update(route.training_id, last_state=stored(state), stop_pending=False)
        return routed(RoutedTrainingStatus, state, RoutingFields.host(reachable=True))

    async def resume(self, route: Route) -> RoutedTrainingStatus:
        state = await self._client.resume(route.training_id)
        await self.starts.confirm(route.training_id, state)
        return routed(RoutedTrainingStatus, state, _reachable(route))

    async def events(self, route: Route, last_event_id: str | None) -> EventStream:
        return RelayedEvents(await self._client.open_events(route.training_id, last_event_id))

    async def logs(self, route: Route, tail: int | None) -> str:
        return await self._client.logs(route.training_id, tail)

    async def list_item(self, route: Route) -> RoutedTrainingStatus | None:
        try:
            return await self.status(route)
        except RunLocally:
            raise
        except Exception as exc:  # one broken item must not fail the whole list
            logger.warning("list: %s answered from the table: %s", route.training_id, exc)
            state = last_seen(route)
            fields = RoutingFields.host(reachable=False, stop_pending=route.stop_pending)
            return routed(RoutedTrainingStatus, state, fields) if state else None

    async def deliver_pending_stops(self) -> int:
        """Send the stops kept while the host was down; returns how many were delivered."""
        delivered = 0
        for route in await self._routes.pending_stops():
            try:
                state = await self._client.stop(route.training_id)
            except (HostUnavailableError, HostConnectionsBusyError):
                break  # down again, or busy here: the next health check retries
            except HostRejectedError as exc:
                logger.warning("pending stop of %s refused: %s", route.training_id, exc)
                await self._routes.update(route.training_id, stop_pending=False)
                continue
            await self._routes.update(
                route.training_id, last_state=stored(state), stop_pending=False
            )
            self._metrics.pending_stops_delivered.inc()
            delivered += 1
        return delivered

    def _while_unreachable(self, route: Route, cause: Exception) -> RoutedTrainingStatus:
        """What is known of a host training while the host cannot be asked: its last state.

        Raises:
            StartUnconfirmedError: no state of it was ever seen (its start is unconfirmed).
        """
        state = last_seen(route)
        if state is None:
            raise StartUnconfirmedError(route.training_id) from cause
        fields = RoutingFields.host(reachable=False, stop_pending=route.stop_pending)
        return routed(RoutedTrainingStatus, state, fields)

    def _remember(self, training_id: str, state: TrainingStatus) -> None:
        kept = stored(state)
        cached = self._routes.cached(training_id)
        if cached is not None and cached.confirmed and cached.last_state == kept:
            return
        # Keeping the last state must not slow the answer: write after responding.
        # The host answered with the training: it certainly has it.
        task = asyncio.get_running_loop().create_task(
            self._routes.update(training_id, last_state=kept, confirmed=True)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _reachable(route: Route) -> RoutingFields:
    return RoutingFields.host(reachable=True, stop_pending=route.stop_pending)
