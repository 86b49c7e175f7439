"""The routing table for async callers: reads from its memory copy, writes in a worker thread.

``RoutingTable`` is synchronous (SQLAlchemy); the dispatcher and both backends use
it only through this class, so no database call ever runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from anyio import to_thread

from backend_proxy.routing_table import (
    FallbackReason,
    Route,
    RoutedTo,
    RouteFilter,
    RoutingTable,
)


class RouteStore:
    """Async face of :class:`RoutingTable`; all but :meth:`cached` may touch the database."""

    def __init__(self, table: RoutingTable) -> None:
        self._table = table
        self._background: set[asyncio.Task[Any]] = set()

    def remember(self, training_id: str, last_state: dict[str, Any]) -> None:
        """Keep the state a backend has just answered, after the answer (a confirmed state).

        Keeping it must not slow the answer; a state already kept is not written again.
        """
        cached = self._table.cached(training_id)
        if cached is not None and cached.confirmed and cached.last_state == last_state:
            return
        task = asyncio.get_running_loop().create_task(
            self.update(training_id, last_state=last_state, confirmed=True)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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

    async def list_routes(self, wanted: RouteFilter) -> tuple[list[Route], int]:
        return await to_thread.run_sync(self._table.list_routes, wanted)

    async def count_by_status(self, *, host_unreachable: bool) -> dict[tuple[str, str, str], int]:
        return await to_thread.run_sync(
            lambda: self._table.count_by_status(host_unreachable=host_unreachable)
        )

    async def local_routes_in_flight(self) -> list[Route]:
        return await to_thread.run_sync(self._table.local_routes_in_flight)

    async def confirmed_host_ids(self, unchanged_since: datetime) -> set[str]:
        return await to_thread.run_sync(self._table.confirmed_host_ids, unchanged_since)

    async def mirror_host_states(self, states: Sequence[dict[str, Any]]) -> int:
        """Keep the host's states (new ids as ``origin="host"``); see ``RoutingTable``."""
        return await to_thread.run_sync(self._table.mirror_host_states, states)

    async def pending_stops(self) -> list[Route]:
        return await to_thread.run_sync(self._table.pending_stops)

    async def unconfirmed_host_routes(self) -> list[Route]:
        return await to_thread.run_sync(self._table.unconfirmed_host_routes)
