"""``/health`` and ``/metrics`` of the backend itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from training_sessions.http.errors import error_responses

from backend_proxy.api.deps import AUTH, RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def read_health(runtime: RuntimeDep) -> dict[str, Any]:
    """Cheap liveness: the backend answers; the host's state is informative only."""
    enabled = runtime.settings.use_training_host_service
    breaker = runtime.host.breaker.state if enabled else None
    return {"status": "ok", "host_service_enabled": enabled, "breaker": breaker}


@router.get(
    "/metrics",
    dependencies=AUTH,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401)},
)
async def read_metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics of this backend (its own registry)."""
    local_counts = await runtime.local.status_counts()
    training_counts = await runtime.dispatcher.training_counts()
    body = runtime.metrics.render(local_counts, training_counts)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
