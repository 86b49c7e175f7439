"""``/api/training-host/status``: what the proxy knows of the host and its breaker."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from backend_proxy.api.deps import RuntimeDep

router = APIRouter(prefix="/api/training-host", tags=["training-host"])


@router.get("/status")
async def read_host_status(runtime: RuntimeDep) -> dict[str, Any]:
    """Breaker state, last health check, last error, failures and the next probe."""
    settings = runtime.settings
    body: dict[str, Any] = {
        "enabled": settings.use_training_host_service,
        "url": settings.training_host_service_url,
        "health_check_interval_seconds": settings.health_check_interval_seconds,
        "breaker": None,
        "last_health": None,
    }
    if settings.use_training_host_service:
        body["breaker"] = dataclasses.asdict(runtime.host.breaker.snapshot())
        health = runtime.host.last_health
        body["last_health"] = dataclasses.asdict(health) if health else None
    return body
