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

from backend_proxy.breaker import HostBreaker
from backend_proxy.config import Settings
from backend_proxy.dispatcher import TrainingDispatcher
from backend_proxy.host_backend import HostBackend
from backend_proxy.host_client import HostClient
from backend_proxy.host_connections import HostConnections
from backend_proxy.host_listing import HostListing
from backend_proxy.host_memory import HostMemory
from backend_proxy.host_starts import HostStarts
from backend_proxy.local_backend import LocalBackend
from backend_proxy.local_trainings import LocalTrainings
from backend_proxy.metrics import ProxyMetrics
from backend_proxy.model_backends import HostModels, LocalModels
from backend_proxy.model_dispatcher import ModelDispatcher
from backend_proxy.poller import HealthPoller
from backend_proxy.route_store import RouteStore
from backend_proxy.routing_table import RoutingTable


@dataclass(slots=True)
class ProxyRuntime:
    """What the routes need, kept on ``app.state.backend_proxy``."""

    settings: Settings
    metrics: ProxyMetrics
    dispatcher: TrainingDispatcher
    models: ModelDispatcher
    host: HostClient
    local: LocalTrainings
    stream_slots: StreamSlots
    poller: HealthPoller | None


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
    table = RoutingTable(settings.database_url)
    routes = RouteStore(table)
    local = LocalTrainings(settings.runtime_settings())
    enabled = settings.use_training_host_service
    connections = _host_connections(settings, host_transport) if enabled else None
    breaker = HostBreaker(
        settings.breaker_failure_threshold, settings.breaker_recovery_timeout_seconds, metrics
    )
    host = HostClient(connections, breaker, metrics)
    starts = HostStarts(
        host,
        routes,
        metrics,
        start_timeout_seconds=settings.host_timeout_seconds,
        fallback_on_host_at_capacity=settings.fallback_on_host_at_capacity,
    )
    host_backend = HostBackend(host, starts, routes, metrics, HostMemory())
    dispatcher = TrainingDispatcher(
        host_backend,
        LocalBackend(local, routes, metrics),
        routes,
        HostListing(host, routes),
        host_enabled=enabled,
    )
    models = ModelDispatcher(
        HostModels(host), LocalModels(settings.models_dir, local), host_enabled=enabled
    )
    poller = (
        HealthPoller(host, dispatcher, settings.health_check_interval_seconds) if enabled else None
    )
    slots = StreamSlots(
        settings.max_event_streams,
        settings.max_event_streams_per_client,
        settings.event_stream_retry_after_seconds,
        setting_names=("BACKEND_MAX_EVENT_STREAMS", "BACKEND_MAX_EVENT_STREAMS_PER_CLIENT"),
        on_change=metrics.event_streams.set,
        on_refused=lambda cap: metrics.event_streams_refused.labels(limit=cap).inc(),
    )
    runtime = ProxyRuntime(settings, metrics, dispatcher, models, host, local, slots, poller)
    await local.start()
    try:
        if poller is not None:
            poller.start()
        app.state.backend_proxy = runtime
        yield runtime
    finally:
        if poller is not None:
            await poller.stop()
        if connections is not None:
            await connections.aclose()
        await local.shutdown()
        table.close()


def _host_connections(
    settings: Settings, transport: httpx.AsyncBaseTransport | None
) -> HostConnections:
    return HostConnections.open(
        settings.training_host_service_url,
        read_timeout=settings.host_timeout_seconds,
        connect_timeout=settings.host_connect_timeout_seconds,
        token=settings.host_api_token,
        max_connections=settings.host_max_connections,
        max_streams=settings.max_event_streams,
        transport=transport,
    )
