"""Prometheus metrics of the proxy, in a registry of its own (one per app)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BREAKER_STATES = ("closed", "half-open", "open")


class ProxyMetrics:
    """The proxy's counters and gauges; tests and ``/metrics`` read ``render()``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.breaker_state = Gauge(
            "backend_proxy_breaker_state",
            "1 for the breaker's current state, 0 for the others",
            ["state"],
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "backend_proxy_breaker_transitions",
            "Breaker state changes",
            ["from_state", "to_state"],
            registry=self.registry,
        )
        self.host_calls = Counter(
            "backend_proxy_host_calls",
            "Calls to the host service by outcome (ok, rejected, failed, short_circuited, busy)",
            ["outcome"],
            registry=self.registry,
        )
        self.host_call_seconds = Histogram(
            "backend_proxy_host_call_seconds",
            "Duration of calls to the host service",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.trainings_routed = Counter(
            "backend_proxy_trainings_routed",
            "Started trainings by destination and fallback reason",
            ["routed_to", "fallback_reason"],
            registry=self.registry,
        )
        self.pending_stops_delivered = Counter(
            "backend_proxy_pending_stops_delivered",
            "Stops kept while the host was down and delivered when it came back",
            registry=self.registry,
        )
        self.event_streams = Gauge(
            "backend_proxy_event_streams",
            "Event streams this backend serves right now (relayed from the host or local)",
            registry=self.registry,
        )
        self.event_streams_refused = Counter(
            "backend_proxy_event_streams_refused",
            "Event streams refused with 429, by the cap reached (service or client)",
            ["limit"],
            registry=self.registry,
        )
        self.local_sessions = Gauge(
            "backend_proxy_local_sessions",
            "Local (fallback) trainings by status, counted in the database at scrape time",
            ["status"],
            registry=self.registry,
        )
        self.trainings = Gauge(
            "backend_proxy_trainings",
            "Trainings in the backend's list by where they run, who started them and status "
            "(host_unreachable: a host training while the host cannot be asked), counted in the "
            "routing table at scrape time",
            ["routed_to", "origin", "status"],
            registry=self.registry,
        )
        self.set_breaker_state("closed")

    def set_breaker_state(self, state: str) -> None:
        for name in BREAKER_STATES:
            self.breaker_state.labels(state=name).set(1 if name == state else 0)

    def render(
        self,
        local_status_counts: Mapping[str, int],
        training_counts: Mapping[tuple[str, str, str], int],
    ) -> bytes:
        for status, count in local_status_counts.items():
            self.local_sessions.labels(status=status).set(count)
        # Only the combinations that exist now: a status left behind must not linger.
        self.trainings.clear()
        for (routed_to, origin, status), count in training_counts.items():
            self.trainings.labels(routed_to=routed_to, origin=origin, status=status).set(count)
        return generate_latest(self.registry)
