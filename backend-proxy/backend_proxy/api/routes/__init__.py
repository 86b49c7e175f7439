"""The proxy's routers; ``create_training_router()`` is what another backend mounts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from training_sessions.http.errors import error_responses
from training_sessions.http.strategies import create_strategies_router
from training_sessions.types import RuntimeSettings

from backend_proxy.api.deps import AUTH
from backend_proxy.api.routes import health, host_status, models, trainings
from backend_proxy.runtime import ProxyRuntime


def _local_runtime_settings(request: Request) -> RuntimeSettings:
    runtime: ProxyRuntime = request.app.state.backend_proxy
    return runtime.settings.runtime_settings()


def create_training_router() -> APIRouter:
    """``/api/trainings``, ``/api/models`` and ``/api/training-host`` in one router, behind
    BACKEND_API_TOKEN.

    The mounting app must also enter ``backend_proxy.runtime.proxy_runtime`` in its
    lifespan and call ``backend_proxy.errors.install_error_handlers``.
    """
    router = APIRouter(dependencies=AUTH, responses=error_responses(401))
    router.include_router(trainings.router)
    router.include_router(models.router)
    router.include_router(host_status.router)
    # The strategies the local fallback trains; the host ships the same folder by default.
    router.include_router(
        create_strategies_router(
            prefix="/api",
            runtime_settings=_local_runtime_settings,
        )
    )
    return router


__all__ = ["create_training_router", "health", "host_status", "models", "trainings"]
