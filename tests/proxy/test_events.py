"""``GET /api/trainings/{id}/events`` through the backend: relayed from the real host, or local."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings

from tests.conftest import find_free_port
from tests.fixtures.servers import run_host_service
from tests.fixtures.sse import assert_complete_stream, collect, follow_then_reconnect
from tests.proxy.conftest import run_backend

pytestmark = pytest.mark.slow

EVENTFUL_TRAINING: dict[str, Any] = {
    "strategy": "momentum_mlp",
    "config": {"epochs": 3, "batch_size": 16, "early_stopping": {"enabled": False}},
}


def test_host_events_relayed_with_last_event_id(
    proxy_settings: Settings, tmp_path: Path, sample_data_dir: Path
) -> None:
    with run_host_service(tmp_path / "host", find_free_port(), data_dir=sample_data_dir) as host:
        settings = proxy_settings.model_copy(update={"training_host_service_url": host.url})
        with run_backend(settings) as backend:
            started = backend.post("/api/trainings/start", json=EVENTFUL_TRAINING)
            assert started.status_code == 202, started.text
            assert started.json()["routed_to"] == "host_service"
            path = f"/api/trainings/{started.json()['training_id']}/events"

            received, statuses_at_drop = follow_then_reconnect(backend, path)
            assert statuses_at_drop == ["queued", "running"]
            full_log = collect(backend, path)
            breaker = backend.get("/api/training-host/status").json()["breaker"]
            relayed_log = backend.get(path.replace("/events", "/logs"), params={"tail": 3})
            host_log = httpx.get(f"{host.url}{path.removeprefix('/api')[:-7]}/logs?tail=3")

    assert_complete_stream(received, full_log, epochs=3)
    assert breaker["state"] == "closed"
    assert relayed_log.status_code == 200
    assert relayed_log.text == host_log.text
    assert 1 <= len(relayed_log.text.splitlines()) <= 3


def test_local_training_events_served_by_backend(proxy_settings: Settings) -> None:
    settings = proxy_settings.model_copy(update={"use_training_host_service": False})
    with run_backend(settings) as backend:
        started = backend.post("/api/trainings/start", json=EVENTFUL_TRAINING)
        assert started.status_code == 202, started.text
        assert started.json()["routed_to"] == "local"
        path = f"/api/trainings/{started.json()['training_id']}/events"

        received, _statuses = follow_then_reconnect(backend, path)
        full_log = collect(backend, path)
        local_log = backend.get(path.replace("/events", "/logs"))

    assert_complete_stream(received, full_log, epochs=3)
    assert local_log.status_code == 200
    assert "worker started" in local_log.text


def test_events_of_unknown_training_is_404(proxy_settings: Settings) -> None:
    settings = proxy_settings.model_copy(update={"use_training_host_service": False})
    with run_backend(settings) as backend:
        response = backend.get("/api/trainings/nope/events")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "no training with id 'nope'",
        "error": "TrainingNotFoundError",
    }
