"""A host frozen (SIGSTOP) past the read timeout during a proxied start: the training runs
on the host or locally, never both, whenever the host is thawed (SIGCONT)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings

from tests.fixtures.servers import run_host_service
from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import SMALL_TRAINING, run_backend

pytestmark = pytest.mark.slow

READ_TIMEOUT_SECONDS = 2.0
# Seconds after the start is sent that the host is thawed: before the read timeout, just
# after it (the old race: the proxy's status check read 404 before the host created it),
# and long after (the check itself times out: 503 "unknown", the health poller settles it).
THAW_AFTER_SECONDS = (1.0, 2.0, 2.1, 2.4, 6.5)


def _routes(backend: httpx.Client, training_id: str) -> dict[str, Any] | None:
    response = backend.get(f"/api/trainings/{training_id}/status")
    if response.status_code == 503:
        return None  # still unsettled: the poller has not reached the host yet
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_frozen_host_never_runs_a_start_twice(
    proxy_settings: Settings, tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    outcomes: list[tuple[float, int, dict[str, Any]]] = []
    with run_host_service(tmp_path / "host", free_port, data_dir=sample_data_dir) as host:
        settings = proxy_settings.model_copy(
            update={
                "training_host_service_url": host.url,
                "host_timeout_seconds": READ_TIMEOUT_SECONDS,
                # Every trial must reach the host: an open breaker would only fall back.
                "breaker_failure_threshold": 1000,
            }
        )
        with run_backend(settings) as backend:
            for thaw_after in THAW_AFTER_SECONDS:
                host.process.send_signal(signal.SIGSTOP)
                thaw = threading.Timer(thaw_after, host.process.send_signal, (signal.SIGCONT,))
                thaw.start()
                try:
                    response = backend.post("/api/trainings/start", json=SMALL_TRAINING)
                finally:
                    thaw.join()
                outcomes.append((thaw_after, response.status_code, response.json()))
            unsettled = [body for _, status, body in outcomes if status == 503]
            for _, status, body in outcomes:
                assert status in (202, 503), body
            settled = {
                body["training_id"]: wait_until(
                    lambda body=body: _routes(backend, body["training_id"]), 60, "settled start"
                )
                for _, _, body in outcomes
            }
            on_host = {
                item["training_id"]
                for item in httpx.get(f"{host.url}/trainings", params={"limit": 500}).json()[
                    "items"
                ]
            }

    for training_id, state in settled.items():
        if state["routed_to"] == "local":
            assert training_id not in on_host, f"{training_id} runs on the host and locally"
        else:
            assert training_id in on_host, f"{training_id} is routed to the host but absent"
    # The unsettled answers said what is known: nothing, and the host was not reachable.
    for body in unsettled:
        assert body["error"] == "StartUnconfirmedError"
        assert body["status"] == "unknown"
        assert body["host_reachable"] is False
    assert len(settled) == len(THAW_AFTER_SECONDS)
