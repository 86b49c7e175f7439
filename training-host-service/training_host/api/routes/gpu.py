"""Accelerator status and training advice."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from training_sessions.http.errors import error_responses

from training_host import gpu
from training_host.api.deps import AUTH, ManagerDep

router = APIRouter(prefix="/gpu", tags=["gpu"], dependencies=AUTH, responses=error_responses(401))


@router.get("/status")
def read_gpu_status(manager: ManagerDep) -> dict[str, Any]:
    """Each device's memory, utilisation, temperature and running sessions; ``available:
    false`` without one."""
    return gpu.gpu_status(manager.device_memory())


@router.get("/recommendations")
def read_gpu_recommendations() -> dict[str, Any]:
    """Batch size, mixed precision and memory advice for this host."""
    return gpu.recommendations()
