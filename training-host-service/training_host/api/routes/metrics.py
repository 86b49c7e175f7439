"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from training_sessions.http.errors import error_responses

from training_host.api.deps import AUTH, MetricsDep

router = APIRouter(tags=["metrics"], dependencies=AUTH, responses=error_responses(401))


@router.get("/metrics", responses={200: {"content": {"text/plain": {}}}})
def read_metrics(metrics: MetricsDep) -> Response:
    """The service's metrics in the Prometheus text format."""
    return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)
