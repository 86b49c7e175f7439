"""The proxy's OpenAPI document describes every body it sends, host and local alike."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings

from tests.fixtures.openapi import (
    ERROR_STATUSES,
    JSON,
    assert_matches_document,
    assert_typed_start_contract,
    is_error_body,
    operations,
    resolve,
)
from tests.fixtures.servers import HostServiceProcess
from tests.proxy.conftest import SMALL_TRAINING, run_backend, wait_for_status

STATUS = "/api/trainings/{training_id}/status"
PERFORMANCE = "/api/trainings/{training_id}/performance"
TRAINING_ROUTES = {
    ("POST", "/api/trainings/start"): ("202", "RoutedStartResponse"),
    ("POST", "/api/trainings/start-multi-symbol"): ("202", "RoutedStartResponse"),
    ("GET", "/api/trainings"): ("200", "RoutedTrainingList"),
    ("GET", STATUS): ("200", "RoutedTrainingStatus"),
    ("GET", PERFORMANCE): ("200", "RoutedTrainingPerformance"),
    ("POST", "/api/trainings/{training_id}/stop"): ("200", "RoutedTrainingStatus"),
}


def test_openapi_documents_every_body_and_error(scripted_backend: httpx.Client) -> None:
    doc = scripted_backend.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    assert "HTTPValidationError" not in json.dumps(doc)
    for (method, path), (status, model) in TRAINING_ROUTES.items():
        response = doc["paths"][path][method.lower()]["responses"][status]
        assert response["content"][JSON]["schema"] == {"$ref": f"#/components/schemas/{model}"}
        routing = set(schemas[model].get("properties", {}))
        if model != "RoutedTrainingList":
            assert {"routed_to", "fallback_reason", "host_reachable", "stop_pending"} <= routing
    for method, path, operation in operations(doc):
        for status, response in operation["responses"].items():
            if status in ERROR_STATUSES:
                schema = response["content"][JSON]["schema"]
                assert is_error_body(doc, schema), f"{method} {path}: {status} is {schema}"
                named = schema["$ref"].rsplit("/", 1)[-1]
                assert named == ("UnavailableBody" if status == "503" else "ErrorBody")
    start = doc["paths"]["/api/trainings/start"]["post"]["responses"]
    assert {"200", "202", "401", "409", "413", "422", "429", "503"} <= set(start)
    assert "training_id" in resolve(doc, start["503"]["content"][JSON]["schema"])["properties"]
    # The status model extends the host's: every field of one is a field of the other.
    assert set(schemas["RoutedTrainingStatus"]["properties"]) >= {
        "training_id",
        "status",
        "progress",
        "created_at",
        "resume_count",
    }


def test_start_config_and_inline_strategy_are_typed_like_the_hosts(
    scripted_backend: httpx.Client,
) -> None:
    doc = scripted_backend.get("/openapi.json").json()

    assert_typed_start_contract(doc)
    epochs = doc["components"]["schemas"]["TrainingOverrides"]["properties"]["epochs"]
    assert epochs["maximum"] == 10_000  # the local runtime's ceiling


def answers(
    client: httpx.Client, doc: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Start a training; its start, status and performance once completed, each checked."""
    start = client.post("/api/trainings/start", json=SMALL_TRAINING)
    started = assert_matches_document(doc, "POST", "/api/trainings/start", start)
    training_id = started["training_id"]
    wait_for_status(client, training_id, {"completed"})
    status = assert_matches_document(
        doc, "GET", STATUS, client.get(f"/api/trainings/{training_id}/status")
    )
    performance = assert_matches_document(
        doc, "GET", PERFORMANCE, client.get(f"/api/trainings/{training_id}/performance")
    )
    return started, status, performance


@pytest.mark.slow
def test_host_and_local_trainings_answer_with_the_documented_bodies(
    proxy_settings: Settings, host_service: HostServiceProcess
) -> None:
    settings = proxy_settings.model_copy(update={"training_host_service_url": host_service.url})
    with run_backend(settings) as backend:
        doc = backend.get("/openapi.json").json()
        started, host_status, host_performance = answers(backend, doc)
        missing = backend.get("/api/trainings/nope/status")
        bad_id = backend.get("/api/trainings/bad id!/status")
        bad_body = backend.post("/api/trainings/start", json={**SMALL_TRAINING, "epocs": 3})
    local_settings = settings.model_copy(update={"use_training_host_service": False})
    with run_backend(local_settings) as backend:
        local, local_status, local_performance = answers(backend, doc)
        listed = backend.get("/api/trainings")
    listing = assert_matches_document(doc, "GET", "/api/trainings", listed)

    assert (started["routed_to"], local["routed_to"]) == ("host_service", "local")
    assert set(local_status) == set(host_status)
    assert set(local_performance) == set(host_performance)
    assert (host_status["host_reachable"], local_status["host_reachable"]) == (True, None)
    assert local_status["stop_pending"] is False
    for status in (host_status, local_status):
        for key in ("created_at", "started_at", "finished_at"):
            assert status[key].endswith("Z"), status[key]
    assert {item["routed_to"] for item in listing["items"]} == {"host_service", "local"}
    assert listing["total"] == 2
    for response, status_code in ((missing, 404), (bad_id, 422), (bad_body, 422)):
        assert response.status_code == status_code, response.text
    assert assert_matches_document(doc, "GET", STATUS, missing)["error"] == "TrainingNotFoundError"
    assert "training_id" in assert_matches_document(doc, "GET", STATUS, bad_id)["detail"]
    bad_body_answer = assert_matches_document(doc, "POST", "/api/trainings/start", bad_body)
    assert "epocs" in bad_body_answer["detail"]
