"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from training_sessions.http.errors import error_responses

from training_host.api.deps import AUTH, ManagerDep, MetricsDep, RunnerDep
from training_host.cluster import cluster_view
from training_host.gpu import gpu_status

router = APIRouter(tags=["metrics"], dependencies=AUTH, responses=error_responses(401))


@router.get("/metrics", responses={200: {"content": {"text/plain": {}}}})
def read_metrics(metrics: MetricsDep, manager: ManagerDep, runner: RunnerDep) -> Response:
    """The service's metrics in the Prometheus text format."""
    content = metrics.render(
        manager.status_counts(),
        gpu_status(manager.device_memory()),
        cluster_view(runner, manager),
    )
    return Response(content=content, media_type=CONTENT_TYPE_LATEST)
