"""The backend's ``/metrics``: breaker state, fallbacks and local trainings by status."""

from __future__ import annotations

import httpx
from backend_proxy.config import Settings

from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import SMALL_TRAINING, ScriptedHost, run_backend


def test_metrics_show_breaker_state_fallbacks_and_local_sessions(
    proxy_settings: Settings, scripted_host: ScriptedHost
) -> None:
    scripted_host.down = True
    with run_backend(proxy_settings, httpx.MockTransport(scripted_host)) as client:
        started = client.post("/api/trainings/start", json=SMALL_TRAINING)
        training_id = started.json()["training_id"]
        client.post(f"/api/trainings/{training_id}/stop")
        wait_until(
            lambda: (
                client.get(f"/api/trainings/{training_id}/status").json()["status"]
                in {"cancelled", "completed"}
            ),
            120,
            "local training final",
        )
        wait_until(
            lambda: client.get("/api/training-host/status").json()["breaker"]["state"] == "open",
            10,
            "breaker open",
        )
        text = client.get("/metrics").text

    assert started.json()["routed_to"] == "local"
    assert 'backend_proxy_breaker_state{state="open"} 1.0' in text
    assert 'backend_proxy_breaker_state{state="closed"} 0.0' in text
    reason = started.json()["fallback_reason"]
    assert (
        f'backend_proxy_trainings_routed_total{{fallback_reason="{reason}",routed_to="local"}} 1.0'
        in text
    )
    local = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("backend_proxy_local_sessions{")
    }
    assert sum(local.values()) == 1 and min(local.values()) >= 0
    assert local["cancelled"] + local["completed"] == 1
