"""Proxy test fixtures: the backend under real uvicorn, and a scripted host for faults.

``ScriptedHost`` is an ``httpx.MockTransport`` handler: it stands in for the
host service only where a fault cannot be produced for real (a host that accepts
a start and then never answers, a 5xx on demand). Everything else runs against
the real host service process (``host_service`` fixture).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_proxy.app import create_app
from backend_proxy.config import Settings
from training_sessions.contract import TrainingPerformance, TrainingProgress, TrainingStatus

from tests.conftest import find_free_port
from tests.fixtures.servers import HostServiceProcess, run_host_service, serve_app
from tests.fixtures.waiting import wait_for_training_status

SMALL_TRAINING = {"strategy": "momentum_mlp", "config": {"epochs": 2}}


def host_status_body(training_id: str, status: str = "running") -> dict[str, Any]:
    """A status body as the host service writes it: half way through two epochs."""
    now = datetime.now(UTC)
    body = TrainingStatus.model_validate(
        {
            "training_id": training_id,
            "status": status,
            "progress": TrainingProgress(
                epoch=1, total_epochs=2, batch=0, total_batches=4, percent=50.0, eta_seconds=1.0
            ),
            "metrics": {"train_loss": 0.69},
            "device": "cuda:0",
            "created_at": now,
            "started_at": now,
            "finished_at": None,
            "error": None,
            "model_path": None,
            "checkpoint_path": None,
            "resume_count": 0,
        }
    )
    return body.model_dump(mode="json")


@dataclass
class ScriptedHost:
    """An in-memory host service whose faults the test switches on and off."""

    down: bool = False
    fail_status: int | None = None
    timeout_after_start: bool = False
    lose_start: bool = False
    reject_start: tuple[int, dict[str, Any]] | None = None
    trainings: dict[str, dict[str, Any]] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if self.fail_status is not None:
            return httpx.Response(self.fail_status, json={"detail": "boom", "error": "Internal"})
        if request.method == "POST" and path.startswith("/trainings/start"):
            return self._start(request)
        if request.method == "GET" and path == "/trainings":
            items = list(reversed(self.trainings.values()))
            listed = {"items": items, "total": len(items), "limit": 500, "offset": 0}
            return httpx.Response(200, json=listed)
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "trainings":
            state = self.trainings.get(parts[1])
            if state is None:
                detail = f"no training with id '{parts[1]}'"
                return httpx.Response(404, json={"detail": detail, "error": "NotFound"})
            if parts[2] == "stop":
                self.stops.append(parts[1])
                state["status"] = "cancelled"
            if parts[2] == "performance":
                performance = TrainingPerformance(
                    training_id=parts[1],
                    status=state["status"],
                    history=[],
                    test_metrics=None,
                    baseline_metrics=None,
                )
                return httpx.Response(200, json=performance.model_dump(mode="json"))
            return httpx.Response(200, json=state)
        return httpx.Response(404, json={"detail": "not found", "error": "NotFound"})

    def _start(self, request: httpx.Request) -> httpx.Response:
        if self.reject_start is not None:
            status, body = self.reject_start
            return httpx.Response(status, json=body)
        if self.lose_start:
            # The start is lost on its way in: the host never creates it, the proxy times out.
            raise httpx.ReadTimeout("timed out", request=request)
        body = json.loads(request.content)
        training_id = body["training_id"]
        created = training_id not in self.trainings
        if created:
            self.trainings[training_id] = host_status_body(training_id)
        if self.timeout_after_start:
            # The host took the training; its answer is lost on the way back.
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(
            202 if created else 200, json={**self.trainings[training_id], "created": created}
        )


@pytest.fixture
def proxy_settings(tmp_path: Path, sample_data_dir: Path, strategies_dir: Path) -> Settings:
    """Settings for a backend whose paths all lie under tmp_path; fast breaker and poller."""
    return Settings(
        use_training_host_service=True,
        training_host_service_url="http://host.invalid:5002",
        host_service_config_file=tmp_path / "absent.yaml",
        database_url=f"sqlite:///{tmp_path / 'backend.sqlite3'}",
        data_dir=sample_data_dir,
        models_dir=tmp_path / "models",
        strategies_dir=strategies_dir,
        checkpoints_dir=tmp_path / "checkpoints",
        breaker_failure_threshold=3,
        breaker_recovery_timeout_seconds=60,
        health_check_interval_seconds=0.2,
        host_timeout_seconds=10,
    )


@pytest.fixture(scope="module")
def shared_host(
    tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path
) -> Iterator[HostServiceProcess]:
    """One real host process for a module's tests that do not kill it."""
    with run_host_service(
        tmp_path_factory.mktemp("host"), find_free_port(), data_dir=sample_data_dir
    ) as service:
        yield service


def host_settings(settings: Settings, host: HostServiceProcess, **changes: Any) -> Settings:
    """``settings`` pointed at ``host``, with ``changes``."""
    return settings.model_copy(update={"training_host_service_url": host.url, **changes})


@pytest.fixture
def scripted_host() -> ScriptedHost:
    return ScriptedHost()


@contextmanager
def run_backend(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> Iterator[httpx.Client]:
    """The backend app under real uvicorn on a free port; yields a client bound to it."""
    app = create_app(settings, host_transport=transport)
    with (
        serve_app(app, find_free_port()) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


@pytest.fixture
def scripted_backend(
    proxy_settings: Settings, scripted_host: ScriptedHost
) -> Iterator[httpx.Client]:
    """The backend talking to ``scripted_host``."""
    with run_backend(proxy_settings, httpx.MockTransport(scripted_host)) as client:
        yield client


def wait_for_status(
    client: httpx.Client, training_id: str, statuses: set[str], timeout: float = 120.0
) -> dict[str, Any]:
    """Poll ``/api/trainings/{id}/status`` through the backend until a wanted status; a
    failure fails at once (a host training may pass through interrupted and resume)."""
    return wait_for_training_status(
        client, f"/api/trainings/{training_id}/status", statuses, timeout, give_up_on={"failed"}
    )


TRAININGS_GAUGE = re.compile(r"^backend_proxy_trainings\{(.*)\} (\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def training_counts(backend: httpx.Client) -> dict[tuple[str, str, str], float]:
    """``backend_proxy_trainings`` from /metrics by (routed_to, origin, status): counted in
    the routing table, no host call."""
    counts = {}
    for line in backend.get("/metrics").text.splitlines():
        if match := TRAININGS_GAUGE.match(line):
            labels = dict(LABEL.findall(match[1]))
            key = (labels["routed_to"], labels["origin"], labels["status"])
            counts[key] = float(match[2])
    return counts
