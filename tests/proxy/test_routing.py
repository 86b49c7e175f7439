"""Routing decisions against a scripted host, for faults a real host cannot produce."""

from __future__ import annotations

from typing import Any

import httpx
from backend_proxy.config import Settings

from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import (
    SMALL_TRAINING,
    ScriptedHost,
    host_status_body,
    run_backend,
)

# What the health poller asks the host every round, whatever a request is doing.
BACKGROUND_CALLS = {"GET /health", "GET /trainings"}


def start(client: httpx.Client, body: dict[str, Any] | None = None) -> httpx.Response:
    return client.post("/api/trainings/start", json=body or SMALL_TRAINING)


def test_start_is_routed_to_host_with_a_proxy_assigned_id(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    response = start(scripted_backend)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["routed_to"] == "host_service"
    assert body["fallback_reason"] is None
    assert len(body["training_id"]) == 32
    assert list(scripted_host.trainings) == [body["training_id"]]


def test_host_4xx_passes_through_unchanged_and_does_not_trip_breaker(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    host_body = {"detail": "unknown strategy 'nope'", "error": "InvalidRequestError"}
    scripted_host.reject_start = (422, host_body)

    answers = [start(scripted_backend, {"strategy": "nope"}) for _ in range(5)]

    assert {a.status_code for a in answers} == {422}
    assert answers[0].json() == host_body
    breaker = scripted_backend.get("/api/training-host/status").json()["breaker"]
    assert breaker["state"] == "closed"
    assert breaker["failure_count"] == 0


def test_host_at_capacity_passes_through_429_by_default(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    scripted_host.reject_start = (429, {"detail": "queue full", "error": "QueueFullError"})

    response = start(scripted_backend)

    assert response.status_code == 429
    assert response.json()["error"] == "QueueFullError"


def test_ambiguous_start_the_host_accepted_gives_exactly_one_host_training(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    scripted_host.timeout_after_start = True

    response = start(scripted_backend)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["routed_to"] == "host_service"
    assert list(scripted_host.trainings) == [body["training_id"]]
    # The proxy asked about the id before deciding anything else (the health poller's
    # calls, which go on in the background, left out).
    asked = [call for call in scripted_host.calls if call not in BACKGROUND_CALLS]
    assert asked[-2:] == ["POST /trainings/start", f"GET /trainings/{body['training_id']}/status"]
    listed = scripted_backend.get("/api/trainings").json()
    assert listed["total"] == 1


def test_ambiguous_start_the_host_never_created_runs_locally_and_is_answered_as_created(
    proxy_settings: Settings, scripted_host: ScriptedHost
) -> None:
    # The poller settles ambiguous starts too, every 10 ms here: it must leave a start alone
    # until its request has answered, or that request's answer reads as a repeat (200).
    settings = proxy_settings.model_copy(
        update={"host_timeout_seconds": 0.5, "health_check_interval_seconds": 0.01}
    )
    scripted_host.lose_start = True
    with run_backend(settings, httpx.MockTransport(scripted_host)) as backend:
        answers = [start(backend) for _ in range(3)]
        listed = backend.get("/api/trainings").json()

    for answer in answers:
        assert answer.status_code == 202, answer.text
        assert answer.json()["routed_to"] == "local"
        assert answer.json()["fallback_reason"] == "host_error"
    assert scripted_host.trainings == {}
    assert listed["total"] == 3


def test_ambiguous_start_that_cannot_be_confirmed_answers_503_with_the_id(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    scripted_host.fail_status = 500

    response = start(scripted_backend)

    # A 500 after sending is ambiguous and the status check fails too: no fallback.
    assert response.status_code == 503
    assert response.json()["error"] == "StartUnconfirmedError"
    training_id = response.json()["training_id"]
    scripted_host.fail_status = None
    scripted_host.trainings[training_id] = host_status_body(training_id)

    retry = start(scripted_backend, {**SMALL_TRAINING, "training_id": training_id})

    assert retry.status_code == 200, retry.text
    assert retry.json()["routed_to"] == "host_service"
    assert list(scripted_host.trainings) == [training_id]


def test_status_of_unconfirmed_start_while_host_down_answers_503_with_the_id(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    scripted_host.fail_status = 500
    training_id = start(scripted_backend).json()["training_id"]
    scripted_host.fail_status = None
    scripted_host.down = True

    response = scripted_backend.get(f"/api/trainings/{training_id}/status")
    listed = scripted_backend.get("/api/trainings").json()

    # No state of it was ever seen: the proxy cannot claim any status.
    assert response.status_code == 503
    assert response.json()["error"] == "StartUnconfirmedError"
    assert response.json()["training_id"] == training_id
    assert listed["items"] == []
    assert listed["total"] == 1


def test_status_of_host_training_while_host_down_answers_host_unreachable_with_last_state(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    training_id = start(scripted_backend).json()["training_id"]
    seen = scripted_backend.get(f"/api/trainings/{training_id}/status").json()
    scripted_host.down = True

    response = scripted_backend.get(f"/api/trainings/{training_id}/status")

    assert response.status_code == 200
    body = response.json()
    assert body["host_reachable"] is False
    # Never "running" with a live ETA while the host cannot be asked.
    assert body["status"] == "host_unreachable"
    assert body["last_known_status"] == seen["status"] == "running"
    assert seen["progress"]["eta_seconds"] is not None
    assert body["progress"] == {**seen["progress"], "eta_seconds": None}
    assert body["unreachable_since"].endswith("Z")
    assert "settled when the host returns" in body["detail"]


def test_stop_while_host_down_is_kept_and_delivered_when_host_returns(
    proxy_settings: Settings, scripted_host: ScriptedHost
) -> None:
    # A short recovery timeout: however long the host was down, the breaker probes again soon.
    settings = proxy_settings.model_copy(update={"breaker_recovery_timeout_seconds": 0.5})
    with run_backend(settings, httpx.MockTransport(scripted_host)) as client:
        training_id = start(client).json()["training_id"]
        scripted_host.down = True

        response = client.post(f"/api/trainings/{training_id}/stop")

        assert response.status_code == 202
        assert response.json()["stop_pending"] is True
        assert scripted_host.stops == []
        scripted_host.down = False
        wait_until(lambda: scripted_host.stops == [training_id], 10, "pending stop delivered")
        body = client.get(f"/api/trainings/{training_id}/status").json()

    assert body["status"] == "cancelled"
    assert body["stop_pending"] is False


def test_unknown_training_id_returns_404_with_message(scripted_backend: httpx.Client) -> None:
    response = scripted_backend.get("/api/trainings/doesnotexist/status")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "no training with id 'doesnotexist'",
        "error": "TrainingNotFoundError",
    }


def test_bad_start_body_returns_422_naming_the_field(scripted_backend: httpx.Client) -> None:
    response = scripted_backend.post(
        "/api/trainings/start", json={"symbol": "AAPL", "symbols": ["MSFT"], "epochs": 3}
    )

    assert response.status_code == 422
    assert "epochs: unknown field" in response.json()["detail"]


def test_host_down_breaker_opens_after_threshold_and_shows_in_status_and_metrics(
    proxy_settings: Settings, scripted_host: ScriptedHost
) -> None:
    scripted_host.down = True
    with run_backend(proxy_settings, httpx.MockTransport(scripted_host)) as client:
        # The health poller alone finds the dead host: no user request pays for it.
        wait_until(
            lambda: client.get("/api/training-host/status").json()["breaker"]["state"] == "open",
            10,
            "breaker open",
        )
        status = client.get("/api/training-host/status").json()
        metrics = client.get("/metrics").text

    assert status["breaker"]["next_probe_at"] is not None
    assert "connection refused" in status["breaker"]["last_error"]
    assert status["last_health"]["ok"] is False
    assert 'backend_proxy_breaker_state{state="open"} 1.0' in metrics
    assert 'to_state="open"' in metrics


def test_unreachable_host_and_host_at_capacity_fall_back_locally_when_configured(
    proxy_settings: Settings, scripted_host: ScriptedHost
) -> None:
    settings = proxy_settings.model_copy(
        update={"fallback_on_host_at_capacity": True, "health_check_interval_seconds": 60}
    )
    with run_backend(settings, httpx.MockTransport(scripted_host)) as client:
        scripted_host.down = True
        unreachable = start(client)
        scripted_host.down = False
        scripted_host.reject_start = (429, {"detail": "queue full", "error": "QueueFullError"})
        at_capacity = start(client)
        bad_local = start(client, {"strategy": "no_such_strategy"})
        for training in (unreachable, at_capacity):
            client.post(f"/api/trainings/{training.json()['training_id']}/stop")

    assert unreachable.status_code == 202, unreachable.text
    assert unreachable.json()["routed_to"] == "local"
    assert unreachable.json()["fallback_reason"] == "host_unreachable"
    assert unreachable.json()["device"] == "cpu"
    assert at_capacity.json()["routed_to"] == "local"
    assert at_capacity.json()["fallback_reason"] == "host_at_capacity"
    # The host took nothing: neither start may run twice.
    assert scripted_host.trainings == {}
    assert bad_local.status_code == 422
    assert "unknown strategy 'no_such_strategy'" in bad_local.json()["detail"]


def test_multi_symbol_start_uses_the_hosts_multi_symbol_route(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    body = {**SMALL_TRAINING, "symbols": ["AAPL", "MSFT"], "timeframes": ["1h"]}

    response = scripted_backend.post("/api/trainings/start-multi-symbol", json=body)
    missing = scripted_backend.post("/api/trainings/start-multi-symbol", json=SMALL_TRAINING)

    assert response.status_code == 202, response.text
    assert response.json()["routed_to"] == "host_service"
    assert "POST /trainings/start-multi-symbol" in scripted_host.calls
    assert missing.status_code == 422
    assert "symbols" in missing.json()["detail"]


def test_repeat_start_with_same_id_returns_the_existing_training(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    first = start(scripted_backend, {**SMALL_TRAINING, "training_id": "nightly-1"})
    again = start(scripted_backend, {**SMALL_TRAINING, "training_id": "nightly-1"})

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["created"] is False
    assert list(scripted_host.trainings) == ["nightly-1"]
    listed = scripted_backend.get("/api/trainings", params={"status": "running"}).json()
    assert [item["training_id"] for item in listed["items"]] == ["nightly-1"]


def test_backend_refuses_unknown_query_parameters_and_bodies_not_sent_as_json(
    scripted_backend: httpx.Client, scripted_host: ScriptedHost
) -> None:
    unknown = scripted_backend.get("/api/trainings", params={"symbl": "AAPL"})
    form = scripted_backend.post(
        "/api/trainings/start",
        content=b'{"symbol": "AAPL"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["detail"].startswith("unknown query parameter 'symbl'; it accepts ")
    assert form.status_code == 422, form.text
    assert "-H 'content-type: application/json'" in form.json()["detail"]
    assert scripted_host.trainings == {}
