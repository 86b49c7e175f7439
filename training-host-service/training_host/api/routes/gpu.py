"""Accelerator status and training advice."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from training_sessions.http.errors import error_responses

from training_host import gpu
from training_host.api.deps import AUTH, ManagerDep, RunnerDep
from training_host.cluster import cluster_view

router = APIRouter(prefix="/gpu", tags=["gpu"], dependencies=AUTH, responses=error_responses(401))


@router.get("/status")
def read_gpu_status(manager: ManagerDep, runner: RunnerDep) -> dict[str, Any]:
    """Each device's memory, utilisation, temperature and running sessions; ``available:
    false`` without one. With executor ``ray``, ``cluster``: every node and its sessions."""
    status = gpu.gpu_status(manager.device_memory())
    cluster = cluster_view(runner, manager)
    return status if cluster is None else {**status, "cluster": cluster}


@router.get("/recommendations")
def read_gpu_recommendations() -> dict[str, Any]:
    """Batch size, mixed precision and memory advice for this host."""
    return gpu.recommendations()
