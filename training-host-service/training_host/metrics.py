"""Prometheus metrics: one ``CollectorRegistry`` per app, fed by middleware and the runtime.

``ServiceMetrics`` owns the instruments; ``MetricsMiddleware`` counts requests by
route template (never the raw path, so ids do not explode the label set); the
``SessionObserver`` methods receive session events from the engine's runtime.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from training_sessions.types import SESSION_STATUSES

from training_host import __version__

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_EPOCH_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class ServiceMetrics:
    """The service's instruments, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "training_host_requests_total",
            "HTTP requests by method, route template and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "training_host_request_duration_seconds",
            "HTTP request latency by route template.",
            ("method", "route"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sessions = Gauge(
            "training_host_sessions",
            "Sessions by status, counted in the database at scrape time.",
            ("status",),
            registry=self.registry,
        )
        self.build_info = Gauge(
            "training_host_build_info",
            "Always 1; the labels say which version runs on which Python and torch.",
            ("version", "python_version", "torch_version"),
            registry=self.registry,
        )
        self.queue_length = Gauge(
            "training_host_queue_length", "Sessions waiting for a worker.", registry=self.registry
        )
        self.epoch_duration = Histogram(
            "training_host_epoch_duration_seconds",
            "Wall time of one training epoch.",
            buckets=_EPOCH_BUCKETS,
            registry=self.registry,
        )
        self.samples_per_second = Gauge(
            "training_host_samples_per_second",
            "Training throughput of the most recent epoch.",
            registry=self.registry,
        )
        self.gpu_memory = Gauge(
            "training_host_gpu_memory_bytes",
            "Accelerator memory by device and kind: total, used and free device-wide (NVML "
            "on CUDA), allocated and reserved by this service's running sessions.",
            ("device", "kind"),
            registry=self.registry,
        )
        self.gpu_utilization = Gauge(
            "training_host_gpu_utilization_percent",
            "CUDA card utilisation over NVML's last sample period.",
            ("device",),
            registry=self.registry,
        )
        self.gpu_temperature = Gauge(
            "training_host_gpu_temperature_celsius",
            "CUDA card temperature.",
            ("device",),
            registry=self.registry,
        )
        self.session_gpu_memory = Gauge(
            "training_host_session_gpu_memory_bytes",
            "Device memory each running session's worker has allocated.",
            ("device", "training_id"),
            registry=self.registry,
        )
        self.node_session = Gauge(
            "training_host_node_session",
            "1 for each running session, labelled by the cluster node it runs on (executor ray).",
            ("node", "node_address", "training_id"),
            registry=self.registry,
        )
        self.node_resources = Gauge(
            "training_host_node_resources",
            "What each cluster node declares (cpus, gpus, memory_bytes); alive: 1 or 0.",
            ("node", "node_address", "resource"),
            registry=self.registry,
        )
        for status in SESSION_STATUSES:
            self.sessions.labels(status=status).set(0)
        self.build_info.labels(
            version=__version__,
            python_version=platform.python_version(),
            torch_version=_torch_version(),
        ).set(1)

    # SessionObserver: called from the runtime's threads; prometheus_client is thread-safe.
    def on_status(self, training_id: str, old: str | None, new: str) -> None:
        # Session counts are read from the database at scrape time: a count kept here
        # would start from zero after a restart and go negative.
        return None

    def on_epoch(self, training_id: str, epoch_seconds: float, samples_per_second: float) -> None:
        self.epoch_duration.observe(epoch_seconds)
        self.samples_per_second.set(samples_per_second)

    def on_queue_length(self, length: int) -> None:
        self.queue_length.set(length)

    def render(
        self,
        status_counts: Mapping[str, int],
        gpu: Mapping[str, Any],
        cluster: Mapping[str, Any] | None = None,
    ) -> bytes:
        """The Prometheus text exposition; session counts and GPU readings taken at scrape time.

        ``gpu`` is :func:`training_host.gpu.gpu_status`'s body, ``cluster``
        :func:`training_host.cluster.cluster_view`'s (None: the local executor).
        """
        self._render_cluster(cluster)
        for status, count in status_counts.items():
            self.sessions.labels(status=status).set(count)
        # Devices and sessions come and go: only what exists now is exported.
        for gauge in (
            self.gpu_memory,
            self.gpu_utilization,
            self.gpu_temperature,
            self.session_gpu_memory,
        ):
            gauge.clear()
        for device in gpu["devices"]:
            label = device["device"]
            for kind in ("total", "used", "free", "allocated", "reserved"):
                value = device.get(f"{kind}_memory_bytes")
                if value is not None:
                    self.gpu_memory.labels(device=label, kind=kind).set(value)
            for gauge, key in (
                (self.gpu_utilization, "utilization_percent"),
                (self.gpu_temperature, "temperature_celsius"),
            ):
                if device.get(key) is not None:
                    gauge.labels(device=label).set(device[key])
            for session in device["sessions"]:
                self.session_gpu_memory.labels(
                    device=label, training_id=session["training_id"]
                ).set(session["allocated_memory_bytes"])
        return generate_latest(self.registry)

    def _render_cluster(self, cluster: Mapping[str, Any] | None) -> None:
        self.node_session.clear()
        self.node_resources.clear()
        for node in (cluster or {}).get("nodes", []):
            labels = {"node": node["node"], "node_address": node["node_address"]}
            for resource in ("cpus", "gpus", "memory_bytes", "alive"):
                self.node_resources.labels(**labels, resource=resource).set(float(node[resource]))
            for training_id in node["sessions"]:
                self.node_session.labels(**labels, training_id=training_id).set(1)


def _torch_version() -> str:
    # The installed distribution's version: importing torch here would slow every start.
    try:
        return package_version("torch")
    except PackageNotFoundError:
        return "unknown"


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the /health path)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # FastAPI puts the matched route in the scope; unmatched paths share one label.
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=template).observe(
                time.perf_counter() - started
            )
