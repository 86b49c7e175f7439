"""The proxy's long-lived objects, built and torn down in one place (the app's lifespan).

A backend that mounts ``create_training_router()`` in its own app enters
``proxy_runtime(app, settings)`` in its lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from training_sessions.http.events import StreamSlots

from backend_proxy.config import Settings
from backend_proxy.dispatcher import TrainingDispatcher
from backend_proxy.host_client import HostBreaker, HostClient, build_http_client
from backend_proxy.local_trainings import LocalTrainings
from backend_proxy.metrics import ProxyMetrics
from backend_proxy.poller import HealthPoller
from backend_proxy.routing_table import RoutingTable


@dataclass(slots=True)
class ProxyRuntime:
    """What the routes need, kept on ``app.state.backend_proxy``."""

    settings: Settings
    metrics: ProxyMetrics
    dispatcher: TrainingDispatcher
    host: HostClient | None
    poller: HealthPoller | None
    stream_slots: StreamSlots


@asynccontextmanager
async def proxy_runtime(
    app: FastAPI,
    settings: Settings,
    *,
    metrics: ProxyMetrics | None = None,
    host_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[ProxyRuntime]:
    """Build the runtime, start the local runtime and the health poller; undo on exit.

    ``host_transport`` is the seam tests use to inject faults into calls to the host.
    """
    metrics = metrics or ProxyMetrics()
    routes = RoutingTable(settings.database_url)
    local = LocalTrainings(settings.runtime_settings())
    http: httpx.AsyncClient | None = None
    host: HostClient | None = None
    if settings.use_training_host_service:
        http = build_http_client(
            settings.training_host_service_url,
            read_timeout=settings.host_timeout_seconds,
            connect_timeout=settings.host_connect_timeout_seconds,
            token=settings.host_api_token,
            transport=host_transport,
        )
        breaker = HostBreaker(
            settings.breaker_failure_threshold, settings.breaker_recovery_timeout_seconds, metrics
        )
        host = HostClient(http, breaker, metrics)
    dispatcher = TrainingDispatcher(
        host,
        routes,
        local,
        metrics,
        fallback_on_host_at_capacity=settings.fallback_on_host_at_capacity,
        start_timeout_seconds=settings.host_timeout_seconds,
    )
    poller = (
        HealthPoller(host, dispatcher, settings.health_check_interval_seconds) if host else None
    )
    slots = StreamSlots(settings.max_event_streams, settings.max_event_streams_per_client)
    runtime = ProxyRuntime(settings, metrics, dispatcher, host, poller, slots)
    await local.start()
    try:
        if poller is not None:
            poller.start()
        app.state.backend_proxy = runtime
        yield runtime
    finally:
        if poller is not None:
            await poller.stop()
        if http is not None:
            await http.aclose()
        await local.shutdown()
        routes.close()
