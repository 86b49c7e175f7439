"""The host backend: trainings on the training host service, and what this backend knows
of them while the host cannot be asked.

Starts (never lost, never run twice) are ``host_starts.HostStarts``'s. While the
host is unreachable, status answers ``host_unreachable`` with the last state seen
(``last_known_status``, ``unreachable_since``, no ETA), performance and events
answer what was last seen of them (``host_memory``), and a stop is kept in the
routing table until :meth:`HostBackend.deliver_pending_stops` sends it. Every such
status is built in :meth:`HostBackend._while_unreachable`, the one place that says
what is known of a host training the host cannot be asked about. Trainings started
on the host by others are mirrored into the routing table (``host_listing``) and
answered here like this backend's own, ``origin="host"``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from training_sessions.contract import TrainingDeleted, TrainingStatus
from training_sessions.http.events import parse_last_event_id

from backend_proxy.errors import (
    HostAnswerUnreadableError,
    HostConnectionsBusyError,
    HostRejectedError,
    HostTrainingNotFoundError,
    HostUnavailableError,
    StartUnconfirmedError,
)
from backend_proxy.event_relay import RelayedStream
from backend_proxy.host_client import HostClient
from backend_proxy.host_memory import HostMemory
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
    unreachable,
)
from backend_proxy.training_backend import EventStream, last_seen

logger = logging.getLogger(__name__)


class HostBackend:
    """A :class:`~backend_proxy.training_backend.TrainingBackend` on the host service."""

    routed_to: RoutedTo = "host_service"

    def __init__(
        self,
        client: HostClient,
        starts: HostStarts,
        routes: RouteStore,
        metrics: ProxyMetrics,
        memory: HostMemory,
    ) -> None:
        self._client = client
        self.starts = starts
        self._routes = routes
        self._metrics = metrics
        self._memory = memory

    @property
    def unreachable_since(self) -> datetime | None:
        """Since when the host has not answered; None while it does."""
        return self._client.unreachable_since

    async def find(self, training_id: str) -> Route | None:
        """The route of a training the host has but this backend never saw (now mirrored here);
        None when the host lacks it or cannot be asked."""
        try:
            state = await self._client.status(training_id)
        except (
            HostRejectedError,
            HostUnavailableError,
            HostConnectionsBusyError,
            HostAnswerUnreadableError,
        ):
            return None
        await self._routes.mirror_host_states([stored(state)])
        return await self._routes.get(training_id)

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
                # The host had it and no longer does (deleted there): neither has this list.
                await self._forget(route.training_id)
                raise
            # The host lacks an ambiguous start: final only once its deadline has passed.
            settled = await self.starts.settle(route)
            if settled is None:
                raise StartUnconfirmedError(route.training_id) from exc
            state = settled
        self._remember(route.training_id, state)
        return routed(RoutedTrainingStatus, state, _reachable(route))

    async def performance(self, route: Route) -> RoutedTrainingPerformance:
        try:
            performance = await self._client.performance(route.training_id)
        except HostUnavailableError:
            kept = self._memory.performance(route.training_id)
            if kept is None:
                raise
            return unreachable(
                RoutedTrainingPerformance, kept, _unreachable(route), self._unreachable_since()
            )
        self._memory.keep_performance(performance)
        return routed(RoutedTrainingPerformance, performance, _reachable(route))

    async def stop(self, route: Route) -> RoutedTrainingStatus:
        try:
            state = await self._client.stop(route.training_id)
        except HostUnavailableError as exc:
            known = self._while_unreachable(route, exc)
            await self._routes.update(route.training_id, stop_pending=True)
            return known.model_copy(update={"stop_requested": True, "stop_pending": True})
        await self._routes.update(route.training_id, last_state=stored(state), stop_pending=False)
        return routed(RoutedTrainingStatus, state, _reachable(route, stop_pending=False))

    async def resume(self, route: Route) -> RoutedTrainingStatus:
        state = await self._client.resume(route.training_id)
        await self.starts.confirm(route.training_id, state)
        return routed(RoutedTrainingStatus, state, _reachable(route))

    async def events(self, route: Route, last_event_id: str | None) -> EventStream:
        after_id = parse_last_event_id(last_event_id)
        try:
            upstream = await self._client.open_events(route.training_id, last_event_id)
        except HostUnavailableError as exc:
            if not self._memory.has_events(route.training_id):
                raise
            known = self._while_unreachable(route, exc)
            return self._memory.replay(route.training_id, after_id, known.model_dump(mode="json"))
        return RelayedStream(upstream, self._memory.recorder(route.training_id))

    async def logs(self, route: Route, tail: int | None) -> str:
        return await self._client.logs(route.training_id, tail)

    async def delete(self, route: Route) -> TrainingDeleted:
        answer = await self._client.delete_training(route.training_id)
        await self._forget(route.training_id)
        return answer

    async def set_tags(self, route: Route, tags: list[str]) -> RoutedTrainingStatus:
        state = await self._client.set_tags(route.training_id, tags)
        await self._routes.update(route.training_id, last_state=stored(state), confirmed=True)
        return routed(RoutedTrainingStatus, state, _reachable(route))

    async def list_item(self, route: Route) -> RoutedTrainingStatus | None:
        """From the routing table, which ``host_listing`` has just brought up to date."""
        state = last_seen(route)
        if state is None:
            return None
        if self.unreachable_since is not None:
            return unreachable(
                RoutedTrainingStatus, state, _unreachable(route), self.unreachable_since
            )
        return routed(RoutedTrainingStatus, state, _reachable(route))

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
        return unreachable(
            RoutedTrainingStatus, state, _unreachable(route), self._unreachable_since()
        )

    def _unreachable_since(self) -> datetime:
        # A host not asked yet since it failed (the breaker open at startup): from now on.
        return self.unreachable_since or datetime.now(UTC)

    async def _forget(self, training_id: str) -> None:
        await self._routes.delete(training_id)
        self._memory.forget(training_id)

    def _remember(self, training_id: str, state: TrainingStatus) -> None:
        # The host answered with the training: it certainly has it.
        self._routes.remember(training_id, stored(state))


def _reachable(route: Route, *, stop_pending: bool | None = None) -> RoutingFields:
    pending = route.stop_pending if stop_pending is None else stop_pending
    return RoutingFields.host(reachable=True, stop_pending=pending, origin=route.origin)


def _unreachable(route: Route) -> RoutingFields:
    return RoutingFields.host(reachable=False, stop_pending=route.stop_pending, origin=route.origin)
