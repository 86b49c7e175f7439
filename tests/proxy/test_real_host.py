"""The proxy against the real host service process: routing, kill, restart, ambiguity."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings
from backend_proxy.host_starts import CLOCK_MARGIN

from tests.conftest import find_free_port
from tests.fixtures.servers import HostServiceProcess, run_host_service
from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import (
    SMALL_TRAINING,
    host_settings,
    run_backend,
    wait_for_status,
)

pytestmark = pytest.mark.slow


def host_trainings(host: HostServiceProcess) -> list[str]:
    items = httpx.get(f"{host.url}/trainings", params={"limit": 500}).json()["items"]
    return [item["training_id"] for item in items]


def started_here(backend: httpx.Client) -> list[dict[str, Any]]:
    """The backend's list, less the host's trainings started elsewhere (other tests')."""
    items = backend.get("/api/trainings", params={"limit": 500}).json()["items"]
    return [item for item in items if item["origin"] == "backend"]


# Outlasts the test that starts it; stopped at its end.
# Runs until stopped (each test stops it): never finished before the test looks.
SLOW_TRAINING = {
    **SMALL_TRAINING,
    "config": {"epochs": 10_000, "early_stopping": {"enabled": False}},
}


class LoseFirstStartAnswer(httpx.AsyncBaseTransport):
    """Delivers the first start to the host, then loses its answer (a read timeout)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path == "/trainings/start" and self.lost == 0:
            await response.aread()
            await response.aclose()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost on the way back", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class DeliverFirstStartTwice(httpx.AsyncBaseTransport):
    """Sends the first start to the host twice, as a concurrent repeat of it would: the
    host creates the training from the first copy and answers the second ``created: false``."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.duplicated = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/trainings/start" and self.duplicated == 0:
            self.duplicated += 1
            first = await self._inner.handle_async_request(request)
            await first.aread()
            await first.aclose()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_host_up_start_is_routed_to_host_and_completes(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    with run_backend(host_settings(proxy_settings, shared_host)) as backend:
        response = backend.post("/api/trainings/start", json=SMALL_TRAINING)
        assert response.status_code == 202, response.text
        training_id = response.json()["training_id"]
        assert response.json()["routed_to"] == "host_service"

        final = wait_for_status(backend, training_id, {"completed"})
        performance = backend.get(f"/api/trainings/{training_id}/performance").json()

    assert training_id in host_trainings(shared_host)
    assert final["routed_to"] == "host_service"
    assert final["host_reachable"] is True
    assert final["progress"]["percent"] == 100
    assert len(performance["history"]) == 2
    assert performance["routed_to"] == "host_service"


def test_host_4xx_passes_through_unchanged_and_breaker_stays_closed(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    bad = {"strategy": "no_such_strategy", "config": {"epochs": 2}}
    direct = httpx.post(f"{shared_host.url}/trainings/start", json=bad)
    with run_backend(host_settings(proxy_settings, shared_host)) as backend:
        answers = [backend.post("/api/trainings/start", json=bad) for _ in range(4)]
        breaker = backend.get("/api/training-host/status").json()["breaker"]
        listed = started_here(backend)

    assert direct.status_code == 422
    assert [a.status_code for a in answers] == [422] * 4
    assert answers[0].json() == direct.json()
    assert breaker["state"] == "closed"
    assert breaker["failure_count"] == 0
    assert listed == []  # a refused start leaves no route behind


def test_ambiguous_start_produces_exactly_one_training(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    transport = LoseFirstStartAnswer()
    before = set(host_trainings(shared_host))
    with run_backend(host_settings(proxy_settings, shared_host), transport) as backend:
        response = backend.post("/api/trainings/start", json=SMALL_TRAINING)
        listed = started_here(backend)

    assert transport.lost == 1
    assert response.status_code == 202, response.text
    assert response.json()["routed_to"] == "host_service"
    new_on_host = set(host_trainings(shared_host)) - before
    assert new_on_host == {response.json()["training_id"]}
    assert [item["routed_to"] for item in listed] == ["host_service"]


def test_routing_table_survives_backend_restart(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    settings = host_settings(proxy_settings, shared_host)
    with run_backend(settings) as backend:
        on_host = backend.post("/api/trainings/start", json=SMALL_TRAINING).json()["training_id"]
    with run_backend(settings.model_copy(update={"use_training_host_service": False})) as backend:
        local = backend.post("/api/trainings/start", json=SMALL_TRAINING).json()
        # Stopped at once: the table, not the local training, is what this test is about.
        backend.post(f"/api/trainings/{local['training_id']}/stop")
    assert local["routed_to"] == "local"
    assert local["fallback_reason"] == "disabled"

    with run_backend(settings) as backend:
        host_status = backend.get(f"/api/trainings/{on_host}/status").json()
        local_status = backend.get(f"/api/trainings/{local['training_id']}/status").json()
        listed = started_here(backend)

    assert host_status["routed_to"] == "host_service"
    assert host_status["host_reachable"] is True
    assert local_status["routed_to"] == "local"
    assert local_status["fallback_reason"] == "disabled"
    assert local_status["device"] == "cpu"
    assert {item["training_id"] for item in listed} == {on_host, local["training_id"]}


def test_host_killed_falls_back_then_host_back_closes_breaker_and_gets_pending_stop(
    proxy_settings: Settings, tmp_path: Path, sample_data_dir: Path
) -> None:
    with run_host_service(tmp_path / "host", find_free_port(), data_dir=sample_data_dir) as host:
        settings = host_settings(proxy_settings, host, breaker_recovery_timeout_seconds=3.0)
        with run_backend(settings) as backend:

            def breaker_state() -> str:
                state: str = backend.get("/api/training-host/status").json()["breaker"]["state"]
                return state

            slow = {**SMALL_TRAINING, "config": {"epochs": 50}}
            on_host = backend.post("/api/trainings/start", json=slow).json()
            seen = backend.get(f"/api/trainings/{on_host['training_id']}/status").json()
            host.kill()

            # The health poller finds the dead host; no user request pays a timeout.
            wait_until(lambda: breaker_state() == "open", 10, "breaker open")
            fallback = backend.post("/api/trainings/start", json=SMALL_TRAINING)
            while_down = backend.get(f"/api/trainings/{on_host['training_id']}/status")
            stop = backend.post(f"/api/trainings/{on_host['training_id']}/stop")

            assert fallback.status_code == 202, fallback.text
            assert fallback.json()["routed_to"] == "local"
            assert fallback.json()["fallback_reason"] == "breaker_open"
            assert while_down.status_code == 200
            assert while_down.json()["host_reachable"] is False
            assert while_down.json()["status"] == "host_unreachable"
            assert while_down.json()["last_known_status"] == seen["status"]
            assert stop.status_code == 202
            assert stop.json()["stop_pending"] is True

            host.restart()
            wait_until(lambda: breaker_state() == "closed", 30, "breaker closed")
            stopped = wait_for_status(backend, on_host["training_id"], {"cancelled"}, 60)
            local_id = fallback.json()["training_id"]
            local_done = wait_for_status(backend, local_id, {"completed"})
            local_performance = backend.get(f"/api/trainings/{local_id}/performance").json()
            metrics = backend.get("/metrics").text

    assert stopped["stop_pending"] is False
    assert stopped["host_reachable"] is True
    assert local_done["routed_to"] == "local"
    assert local_done["device"] == "cpu"
    assert len(local_performance["history"]) == 2
    assert local_performance["routed_to"] == "local"
    for transition in (
        'from_state="closed",to_state="open"',
        'from_state="open",to_state="half-open"',
        'from_state="half-open",to_state="closed"',
    ):
        assert transition in metrics
    assert "backend_proxy_pending_stops_delivered_total 1.0" in metrics


def test_start_naming_a_host_training_started_elsewhere_answers_409_and_lists_it_as_the_hosts(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    training_id = "started-on-the-host-directly"
    direct = httpx.post(
        f"{shared_host.url}/trainings/start", json={**SLOW_TRAINING, "training_id": training_id}
    )
    # Ownership is told by time: a host training created more than the clocks' margin
    # before the backend claimed its id is not the backend's. Claim it after that margin.
    time.sleep(CLOCK_MARGIN.total_seconds() + 0.5)
    with run_backend(host_settings(proxy_settings, shared_host)) as backend:
        # Refused whether the backend has mirrored it yet (its origin) or not (the host's
        # created_at is older than the id's claim here).
        same_body = backend.post(
            "/api/trainings/start", json={**SLOW_TRAINING, "training_id": training_id}
        )
        listed = [
            item
            for item in backend.get("/api/trainings", params={"limit": 500}).json()["items"]
            if item["training_id"] == training_id
        ]
        other_body = backend.post(
            "/api/trainings/start", json={"strategy": "momentum_mlp", "training_id": training_id}
        )
        status = backend.get(f"/api/trainings/{training_id}/status")
    on_host = httpx.get(f"{shared_host.url}/trainings/{training_id}/status").json()
    httpx.post(f"{shared_host.url}/trainings/{training_id}/stop")

    assert direct.status_code == 202, direct.text
    not_owned = {
        "detail": f"training '{training_id}' exists on the training host but was not started "
        "through this backend; start with another training_id",
        "error": "TrainingNotOwnedError",
    }
    assert same_body.status_code == 409, same_body.text
    assert same_body.json() == not_owned
    # One view: the backend lists it, marked as the host's, and answers about it...
    assert [(item["origin"], item["routed_to"]) for item in listed] == [("host", "host_service")]
    assert status.status_code == 200, status.text
    assert status.json()["origin"] == "host"
    assert status.json()["host_reachable"] is True
    # ...but a start never adopts it, whatever its body.
    assert other_body.status_code == 409, other_body.text
    assert other_body.json() == not_owned
    assert on_host["status"] in {"queued", "running"}
    assert on_host["stop_requested"] is False


def test_start_the_host_created_after_the_claim_is_this_backends_own(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    transport = DeliverFirstStartTwice()
    with run_backend(host_settings(proxy_settings, shared_host), transport) as backend:
        started = backend.post("/api/trainings/start", json=SLOW_TRAINING)
        training_id = started.json()["training_id"]
        status = backend.get(f"/api/trainings/{training_id}/status")
        stop = backend.post(f"/api/trainings/{training_id}/stop")

    assert transport.duplicated == 1
    # The host saw this id first from this backend's own start: answered, never refused.
    assert started.status_code == 200, started.text
    assert started.json()["created"] is False
    assert started.json()["routed_to"] == "host_service"
    assert status.json()["host_reachable"] is True
    assert stop.status_code == 200, stop.text
    assert host_trainings(shared_host).count(training_id) == 1
