"""The proxy's routers; ``create_training_router()`` is what another backend mounts."""

from __future__ import annotations

from fastapi import APIRouter
from training_sessions.http.errors import error_responses

from backend_proxy.api.deps import AUTH
from backend_proxy.api.routes import health, host_status, models, trainings


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
    return router


__all__ = ["create_training_router", "health", "host_status", "models", "trainings"]
