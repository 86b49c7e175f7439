"""The backend caps its event streams like the host: per client and in all, 429 past either."""

from __future__ import annotations

from typing import Any

import pytest
from backend_proxy.config import Settings

from tests.fixtures.sse import open_stream, stream_opens
from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import run_backend

pytestmark = pytest.mark.slow

ENDLESS_TRAINING: dict[str, Any] = {
    "strategy": "momentum_mlp",
    "config": {"epochs": 100_000, "early_stopping": {"enabled": False}},
}


def test_local_training_streams_past_the_client_cap_get_429(proxy_settings: Settings) -> None:
    settings = proxy_settings.model_copy(
        update={"use_training_host_service": False, "max_event_streams_per_client": 1}
    )
    with run_backend(settings) as backend:
        training_id = backend.post("/api/trainings/start", json=ENDLESS_TRAINING).json()[
            "training_id"
        ]
        path = f"/api/trainings/{training_id}/events"
        try:
            with open_stream(backend, path) as first, open_stream(backend, path) as second:
                statuses = (first.status_code, second.status_code)
                refused = second.json()
                retry_after = second.headers.get("Retry-After")
            # The closed streams give their slot back.
            wait_until(lambda: stream_opens(backend, path), 30, "a slot freed by closing")
        finally:
            backend.post(f"/api/trainings/{training_id}/stop")

    assert statuses == (200, 429)
    assert refused["error"] == "TooManyStreamsError"
    assert "at most 1 per client" in refused["detail"]
    assert retry_after is not None and int(retry_after) > 0
