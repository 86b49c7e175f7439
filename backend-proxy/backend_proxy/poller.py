"""The background health check that feeds the breaker, delivers pending stops and keeps the
list true.

A dead host is found here, between user requests, so a user's start does not
pay a timeout to learn it; a host that comes back is probed here too (the
breaker admits this check as its one half-open probe), and the host's list is
mirrored into the routing table, so what a training became while the host was
down (resumed, completed, failed) replaces ``host_unreachable`` without anyone asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from backend_proxy.dispatcher import TrainingDispatcher
from backend_proxy.host_client import HostClient

logger = logging.getLogger(__name__)


class HealthPoller:
    """Every ``interval_seconds``: GET /health through the breaker, then pending stops,
    ambiguous starts whose deadline has passed, and the host's list."""

    def __init__(
        self, host: HostClient, dispatcher: TrainingDispatcher, interval_seconds: float
    ) -> None:
        self._host = host
        self._dispatcher = dispatcher
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="host-health")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def check_once(self) -> bool:
        """One health check; True when the host answered."""
        health = await self._host.check_health()
        if health.ok:
            await self._dispatcher.deliver_pending_stops()
            await self._dispatcher.resolve_unconfirmed_starts()
            await self._dispatcher.refresh_host_listing()
        return health.ok

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:  # the poller must outlive any one bad round
                logger.exception("host health check failed unexpectedly")
            await asyncio.sleep(self._interval)
