"""The standalone backend app: the training router plus /health and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from training_sessions.http.body_limit import BodySizeLimitMiddleware
from training_sessions.http.browser_guard import BrowserGuardMiddleware
from training_sessions.http.openapi import document_service_rules
from training_sessions.http.query_params import REFUSE_UNKNOWN_QUERY_PARAMETERS
from training_sessions.http.request_logging import RequestIdMiddleware

from backend_proxy.api.routes import create_training_router, dashboard, health
from backend_proxy.config import Settings, get_settings
from backend_proxy.errors import install_error_handlers
from backend_proxy.runtime import proxy_runtime


def create_app(
    settings: Settings | None = None, *, host_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the backend app; ``host_transport`` lets tests inject faults into host calls."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with proxy_runtime(app, settings, host_transport=host_transport):
            yield

    # docs_url/redoc_url: the dashboard router serves them with local assets.
    app = FastAPI(
        title="Backend (training proxy)",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[REFUSE_UNKNOWN_QUERY_PARAMETERS],
    )
    install_error_handlers(app, settings.directories())
    document_service_rules(app, settings.runtime_settings().ceilings)
    app.include_router(create_training_router())
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Before any body is read: no other site's page may use a browser against us.
    app.add_middleware(BrowserGuardMiddleware, host_names=settings.host_names())
    # Outermost: every answer, refusals included, carries its request id.
    app.add_middleware(RequestIdMiddleware)
    return app
