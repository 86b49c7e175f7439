"""The routing table for async callers: reads from its memory copy, writes in a worker thread.

``RoutingTable`` is synchronous (SQLAlchemy); the dispatcher and both backends use
it only through this class, so no database call ever runs on the event loop.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread

from backend_proxy.routing_table import FallbackReason, Route, RoutedTo, RoutingTable


class RouteStore:
    """Async face of :class:`RoutingTable`; all but :meth:`cached` may touch the database."""

    def __init__(self, table: RoutingTable) -> None:
        self._table = table

    def cached(self, training_id: str) -> Route | None:
        """The route if it is in memory; never touches the database."""
        return self._table.cached(training_id)

    async def get(self, training_id: str) -> Route | None:
        cached = self._table.cached(training_id)
        if cached is not None:
            return cached
        return await to_thread.run_sync(self._table.get, training_id)

    async def claim(
        self,
        training_id: str,
        routed_to: RoutedTo,
        *,
        fallback_reason: FallbackReason | None,
        last_state: dict[str, Any],
    ) -> Route | None:
        """Insert an unconfirmed route unless the id has one (see ``RoutingTable.claim``)."""
        return await to_thread.run_sync(
            lambda: self._table.claim(
                training_id, routed_to, fallback_reason=fallback_reason, last_state=last_state
            )
        )

    async def add(
        self,
        training_id: str,
        routed_to: RoutedTo,
        *,
        fallback_reason: FallbackReason | None,
        confirmed: bool,
        last_state: dict[str, Any],
    ) -> Route:
        return await to_thread.run_sync(
            lambda: self._table.add(
                training_id,
                routed_to,
                fallback_reason=fallback_reason,
                confirmed=confirmed,
                last_state=last_state,
            )
        )

    async def update(self, training_id: str, **changes: Any) -> Route | None:
        return await to_thread.run_sync(lambda: self._table.update(training_id, **changes))

    async def delete(self, training_id: str) -> None:
        await to_thread.run_sync(self._table.delete, training_id)

    async def list_routes(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[Route], int]:
        return await to_thread.run_sync(
            lambda: self._table.list_routes(status=status, limit=limit, offset=offset)
        )

    async def pending_stops(self) -> list[Route]:
        return await to_thread.run_sync(self._table.pending_stops)

    async def unconfirmed_host_routes(self) -> list[Route]:
        return await to_thread.run_sync(self._table.unconfirmed_host_routes)
