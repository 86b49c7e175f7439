"""The host's trainings mirrored into the routing table: one list of everything.

The backend lists from its routing table (one query: filters, page and total agree).
This module keeps the table's host rows true to the host: every training in the
host's ``GET /trainings`` (those started on the host directly, or by another
client, become rows with ``origin="host"``), each with the state the host last
gave. A host row the host no longer lists is asked about once, and dropped on a 404
(deleted on the host). The health poller refreshes it each round the host answers,
so a training's real outcome replaces what was known while the host was down
without anyone asking; a list refreshes it first unless that was just done.
"""

from __future__ import annotations

import asyncio
import logging
import time

from training_sessions.store import utcnow

from backend_proxy.errors import (
    HostAnswerUnreadableError,
    HostConnectionsBusyError,
    HostRejectedError,
    HostTrainingNotFoundError,
    HostUnavailableError,
)
from backend_proxy.host_client import HostClient
from backend_proxy.host_starts import stored
from backend_proxy.route_store import RouteStore

logger = logging.getLogger(__name__)

# The host's own ceiling on a page of its list.
PAGE_SIZE = 500
HOST_SILENT = (
    HostUnavailableError,
    HostConnectionsBusyError,
    HostRejectedError,
    HostAnswerUnreadableError,
)


class HostListing:
    """Brings the routing table's host rows up to date with the host's list."""

    def __init__(self, client: HostClient, routes: RouteStore) -> None:
        self._client = client
        self._routes = routes
        self._lock = asyncio.Lock()
        self._refreshed_at: float | None = None

    async def refresh(self, max_age_seconds: float = 0.0) -> bool:
        """Mirror the host's list unless that was done less than ``max_age_seconds`` ago.

        Concurrent callers share one sweep. Returns False when the host could not be
        listed (the table keeps what it knew); never raises for the host's sake.
        """
        async with self._lock:
            fresh = self._refreshed_at is not None and (
                time.monotonic() - self._refreshed_at < max_age_seconds
            )
            if fresh:
                return True
            try:
                await self._sweep()
            except HOST_SILENT as exc:
                logger.info("host list not mirrored: %s", exc)
                return False
            self._refreshed_at = time.monotonic()
            return True

    async def _sweep(self) -> None:
        started = utcnow()
        seen: set[str] = set()
        offset = 0
        while True:
            page = await self._client.list_trainings(limit=PAGE_SIZE, offset=offset)
            await self._routes.mirror_host_states([stored(item) for item in page.items])
            seen.update(item.training_id for item in page.items)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        # A page may shift while it is read (a training deleted meanwhile): ask before dropping.
        for training_id in await self._routes.confirmed_host_ids(started) - seen:
            await self._settle_missing(training_id)

    async def _settle_missing(self, training_id: str) -> None:
        try:
            state = await self._client.status(training_id)
        except HostTrainingNotFoundError:
            logger.info("host training %s is gone from the host: dropped here", training_id)
            await self._routes.delete(training_id)
            return
        await self._routes.mirror_host_states([stored(state)])
