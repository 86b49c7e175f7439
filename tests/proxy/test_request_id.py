"""The backend echoes a sane X-Request-ID, and makes one up otherwise."""

from __future__ import annotations

import re

from backend_proxy.config import Settings

from tests.proxy.conftest import run_backend


def test_backend_echoes_or_generates_request_id(proxy_settings: Settings) -> None:
    settings = proxy_settings.model_copy(update={"use_training_host_service": False})
    with run_backend(settings) as backend:
        chosen = backend.get("/health", headers={"X-Request-ID": "front-1.2"})
        forged = backend.get("/health", headers={"X-Request-ID": "two words"})
        error = backend.get("/api/trainings/nope/status")

    assert chosen.headers["x-request-id"] == "front-1.2"
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])
    assert error.status_code == 404 and re.fullmatch(r"[0-9a-f]{32}", error.headers["x-request-id"])
    assert error.json()["error"] == "TrainingNotFoundError"
