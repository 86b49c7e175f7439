"""The local backend: trainings on this backend's CPU, through the session runtime."""

from __future__ import annotations

import logging

from training_sessions.contract import TrainingDeleted, TrainingStatus

from backend_proxy.local_trainings import LocalTrainings
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


class LocalBackend:
    """A :class:`~backend_proxy.training_backend.TrainingBackend` running trainings here."""

    routed_to: RoutedTo = "local"

    def __init__(self, trainings: LocalTrainings, routes: RouteStore, metrics: ProxyMetrics):
        self._trainings = trainings
        self._routes = routes
        self._metrics = metrics

    async def start(self, claimed: Route, body: StartBody) -> RoutedStartResponse:
        """The first choice only while the host is disabled."""
        return await self.take_over(RunLocally(claimed.training_id, body, "disabled"))

    async def take_over(self, start: RunLocally) -> RoutedStartResponse:
        """Run here a start the host did not (or will never) take; its route says why."""
        logger.info("%s", start)
        try:
            state, created = await self._trainings.submit(start.training_id, start.body)
        except Exception:
            await self._routes.delete(start.training_id)
            raise
        await self._routes.add(
            start.training_id,
            "local",
            fallback_reason=start.reason,
            confirmed=True,
            last_state=state.model_dump(mode="json"),
        )
        self._metrics.trainings_routed.labels(routed_to="local", fallback_reason=start.reason).inc()
        return routed(
            RoutedStartResponse, state, RoutingFields.local(start.reason), created=created
        )

    async def start_again(self, route: Route, body: StartBody) -> RoutedStartResponse:
        state, created = await self._trainings.submit(route.training_id, body)
        return routed(RoutedStartResponse, state, _fields(route), created=created, **_tags(route))

    async def status(self, route: Route) -> RoutedTrainingStatus:
        return self._answer(route, await self._trainings.get(route.training_id))

    async def performance(self, route: Route) -> RoutedTrainingPerformance:
        performance = await self._trainings.performance(route.training_id)
        return routed(RoutedTrainingPerformance, performance, _fields(route))

    async def stop(self, route: Route) -> RoutedTrainingStatus:
        return self._answer(route, await self._trainings.stop(route.training_id))

    async def resume(self, route: Route) -> RoutedTrainingStatus:
        return self._answer(route, await self._trainings.resume(route.training_id))

    async def events(self, route: Route, last_event_id: str | None) -> EventStream:
        return await self._trainings.events(route.training_id, last_event_id)

    async def logs(self, route: Route, tail: int | None) -> str:
        return await self._trainings.log(route.training_id, tail)

    async def delete(self, route: Route) -> TrainingDeleted:
        removed = await self._trainings.delete(route.training_id)
        await self._routes.delete(route.training_id)
        return TrainingDeleted(training_id=route.training_id, files_removed=removed)

    async def set_tags(self, route: Route, tags: list[str]) -> RoutedTrainingStatus:
        # The runtime keeps the tags; the route's copy serves the list's ?tag= filter.
        state = await self._trainings.set_tags(route.training_id, tags)
        updated = await self._routes.update(
            route.training_id,
            last_state=state.model_dump(mode="json"),
            local_tags=tuple(state.tags),
        )
        return self._answer(updated or route, state)

    async def list_item(self, route: Route) -> RoutedTrainingStatus | None:
        """From the routing table, which :meth:`refresh_in_flight` has just brought up to date."""
        state = last_seen(route)
        return (
            routed(RoutedTrainingStatus, state, _fields(route), **_tags(route)) if state else None
        )

    async def refresh_in_flight(self) -> None:
        """Bring the table's state of every local training not yet final up to date."""
        for route in await self._routes.local_routes_in_flight():
            try:
                state = await self._trainings.get(route.training_id)
            except Exception as exc:  # one broken training must not fail the whole list
                logger.warning("list: %s kept as last seen: %s", route.training_id, exc)
                continue
            await self._routes.update(route.training_id, last_state=state.model_dump(mode="json"))

    def _answer(self, route: Route, state: TrainingStatus) -> RoutedTrainingStatus:
        self._routes.remember(route.training_id, state.model_dump(mode="json"))
        return routed(RoutedTrainingStatus, state, _fields(route), **_tags(route))


def _fields(route: Route) -> RoutingFields:
    return RoutingFields.local(route.fallback_reason)


def _tags(route: Route) -> dict[str, list[str]]:
    # The tags the route holds: the host's last answer, or the runtime's copy for a local one.
    return {"tags": list(route.tags)}
