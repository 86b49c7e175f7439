"""The app factory: settings in, a FastAPI app whose lifespan owns the session runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from training_sessions.event_feed import EventFeed
from training_sessions.http.body_limit import BodySizeLimitMiddleware
from training_sessions.http.browser_guard import BrowserGuardMiddleware
from training_sessions.http.events import StreamSlots
from training_sessions.http.openapi import document_service_rules
from training_sessions.http.query_params import REFUSE_UNKNOWN_QUERY_PARAMETERS
from training_sessions.http.request_logging import RequestIdMiddleware
from training_sessions.service import SessionService

from training_host import __version__
from training_host.api.routes import (
    dashboard,
    gpu,
    health,
    ktrdr_compat,
    ktrdr_operations,
    metrics,
    models,
    strategies,
    trainings,
)
from training_host.config import Settings, get_settings
from training_host.errors import install_error_handlers
from training_host.executors import session_runner
from training_host.ktrdr.worker_registration import registrar_for
from training_host.metrics import MetricsMiddleware, ServiceMetrics
from training_host.startup import startup_summary

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the runtime (migrations, recovery, supervisor); on exit checkpoint and stop it."""
    settings: Settings = app.state.settings
    settings.ensure_directories()
    manager = SessionService(
        settings.runtime_settings(), observer=app.state.metrics, runner=app.state.runner
    )
    # start() runs migrations and recovery: blocking work kept off the event loop.
    await anyio.to_thread.run_sync(manager.start)
    app.state.manager = manager
    app.state.event_feed = EventFeed(manager)
    app.state.stream_slots = StreamSlots(
        settings.max_event_streams, settings.max_event_streams_per_client
    )
    app.state.ktrdr_registrar = registrar_for(settings, manager)
    registration = (
        asyncio.create_task(app.state.ktrdr_registrar.run())
        if app.state.ktrdr_registrar is not None
        else None
    )
    logger.info("training host %s ready on %s:%s", __version__, settings.host, settings.port)
    logger.info("started with %s", startup_summary(settings, manager.recovered_at_start))
    try:
        yield
    finally:
        if registration is not None:
            registration.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await registration
        await app.state.event_feed.aclose()
        await anyio.to_thread.run_sync(manager.shutdown, settings.stop_grace_seconds)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; ``settings`` defaults to ``get_settings()``."""
    app = FastAPI(
        title="Training host service",
        version=__version__,
        description="Runs training sessions on this host's GPU through training_engine.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from the dashboard router, with local assets
        redoc_url=None,
        dependencies=[REFUSE_UNKNOWN_QUERY_PARAMETERS],
    )
    settings = settings or get_settings()
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.state.runner = session_runner(settings)  # a bad executor fails here, before serving
    app.state.started_at = time.monotonic()
    install_error_handlers(app, settings.directories())
    document_service_rules(app, settings.ceilings())
    for module in (
        health,
        trainings,
        models,
        strategies,
        ktrdr_compat,
        ktrdr_operations,
        gpu,
        metrics,
        dashboard,
    ):
        app.include_router(module.router)
    app.include_router(ktrdr_operations.shutdown_router)
    # Added last = outermost: oversized bodies are refused and still counted in metrics.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Before any body is read: no other site's page may use a browser against us.
    app.add_middleware(BrowserGuardMiddleware, host_names=settings.host_names())
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    # Outermost: every answer, refusals included, carries its request id.
    app.add_middleware(RequestIdMiddleware)
    return app
