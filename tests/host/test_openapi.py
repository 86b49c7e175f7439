"""The host's OpenAPI document describes every body it sends, errors included."""

from __future__ import annotations

import json

import httpx
import pytest

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
from tests.host.conftest import QUICK_BODY, wait_for_status

pytestmark = pytest.mark.slow

# The success body of each training route, by the model that documents it.
TRAINING_ROUTES = {
    ("POST", "/trainings/start"): ("202", "StartTrainingResponse"),
    ("POST", "/trainings/start-multi-symbol"): ("202", "StartTrainingResponse"),
    ("GET", "/trainings"): ("200", "TrainingList"),
    ("GET", "/trainings/{training_id}/status"): ("200", "TrainingStatus"),
    ("GET", "/trainings/{training_id}/performance"): ("200", "TrainingPerformance"),
    ("POST", "/trainings/{training_id}/stop"): ("200", "TrainingStatus"),
}


def test_openapi_documents_every_body_and_error(host_service: HostServiceProcess) -> None:
    doc = httpx.get(f"{host_service.url}/openapi.json").json()

    assert "HTTPValidationError" not in json.dumps(doc)
    assert "ValidationError" not in doc["components"]["schemas"]
    for (method, path), (status, model) in TRAINING_ROUTES.items():
        response = doc["paths"][path][method.lower()]["responses"][status]
        assert response["content"][JSON]["schema"] == {"$ref": f"#/components/schemas/{model}"}
    for method, path, operation in operations(doc):
        for status, response in operation["responses"].items():
            if status in ERROR_STATUSES:
                schema = response["content"][JSON]["schema"]
                assert resolve(doc, schema) == doc["components"]["schemas"]["ErrorBody"], (
                    f"{method} {path} documents {status} as {schema}"
                )
            else:
                assert status.startswith("2"), f"{method} {path} documents {status}"
        if path not in ("/health", "/"):  # liveness and the page/identity are open
            assert "401" in operation["responses"], f"{method} {path} lacks its 401"
    start = doc["paths"]["/trainings/start"]["post"]["responses"]
    assert {"200", "202", "401", "409", "413", "422", "429", "503"} <= set(start)
    assert is_error_body(doc, start["409"]["content"][JSON]["schema"])


def test_start_config_and_inline_strategy_are_typed_with_real_examples(
    host_service: HostServiceProcess,
) -> None:
    doc = httpx.get(f"{host_service.url}/openapi.json").json()

    assert_typed_start_contract(doc)
    # The document states this host's ceilings (defaults here) and KTRDR's bodies.
    assert (
        doc["components"]["schemas"]["TrainingOverrides"]["properties"]["epochs"]["maximum"]
        == 10_000
    )
    ktrdr = doc["paths"]["/training/start"]["post"]["requestBody"]["content"][JSON]["schema"]
    assert {resolve(doc, branch)["title"] for branch in ktrdr["anyOf"]} == {
        "EraAStartBody",
        "InlineStartBody",
    }


def test_real_answers_match_the_document(host_service: HostServiceProcess) -> None:
    client = httpx.Client(base_url=host_service.url, timeout=30)
    doc = client.get("/openapi.json").json()

    started = assert_matches_document(
        doc, "POST", "/trainings/start", client.post("/trainings/start", json=QUICK_BODY)
    )
    training_id = started["training_id"]
    wait_for_status(client, training_id, {"completed"})
    status = assert_matches_document(
        doc,
        "GET",
        "/trainings/{training_id}/status",
        client.get(f"/trainings/{training_id}/status"),
    )
    performance = assert_matches_document(
        doc,
        "GET",
        "/trainings/{training_id}/performance",
        client.get(f"/trainings/{training_id}/performance"),
    )
    listing = assert_matches_document(doc, "GET", "/trainings", client.get("/trainings"))
    missing = client.get("/trainings/nope/status")
    bad = client.post("/trainings/start", json={**QUICK_BODY, "epocs": 3})

    assert started["created"] is True
    assert status["created_at"].endswith("Z") and status["finished_at"].endswith("Z")
    assert performance["test_metrics"] is not None
    assert [item["training_id"] for item in listing["items"]] == [training_id]
    assert missing.status_code == 404
    assert assert_matches_document(doc, "GET", "/trainings/{training_id}/status", missing)
    assert bad.status_code == 422
    assert assert_matches_document(doc, "POST", "/trainings/start", bad)["detail"].startswith(
        "epocs"
    )


def test_openapi_documents_the_event_stream_and_the_log_as_text(
    host_service: HostServiceProcess,
) -> None:
    doc = httpx.get(f"{host_service.url}/openapi.json").json()
    events = doc["paths"]["/trainings/{training_id}/events"]["get"]
    logs = doc["paths"]["/trainings/{training_id}/logs"]["get"]

    assert list(events["responses"]["200"]["content"]) == ["text/event-stream"]
    assert any(p["name"] == "Last-Event-ID" for p in events["parameters"])
    assert list(logs["responses"]["200"]["content"]) == ["text/plain"]
    assert any(p["name"] == "tail" for p in logs["parameters"])
    for operation in (events, logs):
        assert {"401", "404", "422"} <= set(operation["responses"])
