"""One list through the backend, against the real host process: trainings started through
the backend, on the host directly and as fallback runs, filtered, paged and counted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings

from tests.fixtures.servers import HostServiceProcess
from tests.proxy.conftest import host_settings, run_backend, training_counts, wait_for_status

pytestmark = pytest.mark.slow

ONE_EPOCH = {"epochs": 1, "early_stopping": {"enabled": False}}
LOCAL = {"strategy": "momentum_mlp", "symbols": ["MSFT"], "timeframes": ["1h"], "config": ONE_EPOCH}
VIA_BACKEND = {**LOCAL, "symbols": ["AAPL"]}
ON_THE_HOST = {
    "strategy": "multi_timeframe_mlp",
    "symbols": ["AAPL", "MSFT"],
    "timeframes": ["1h", "4h"],
    "config": ONE_EPOCH,
}


def started(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    training_id: str = response.json()["training_id"]
    return training_id


def listed_ids(backend: httpx.Client, **params: Any) -> list[str]:
    response = backend.get("/api/trainings", params=params)
    assert response.status_code == 200, response.text
    return [item["training_id"] for item in response.json()["items"]]


def test_one_list_of_backend_host_and_fallback_trainings_filtered_and_paged(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    settings = host_settings(proxy_settings, shared_host)
    # A fallback run: this backend (its database) while the host is switched off.
    with run_backend(settings.model_copy(update={"use_training_host_service": False})) as backend:
        local = started(backend.post("/api/trainings/start", json=LOCAL))
        wait_for_status(backend, local, {"completed"})
        tagged = backend.patch(f"/api/trainings/{local}", json={"tags": ["nightly", "msft"]})
    direct = httpx.post(f"{shared_host.url}/trainings/start", json=ON_THE_HOST)
    on_host = started(direct)
    with run_backend(settings) as backend:
        via = started(backend.post("/api/trainings/start", json=VIA_BACKEND))
        # The host runs one at a time: the one started on it directly first.
        for training_id in (on_host, via):
            wait_for_status(backend, training_id, {"completed"})
        everything = backend.get("/api/trainings").json()
        created = {item["training_id"]: item["created_at"] for item in everything["items"]}
        filtered = {
            "completed": listed_ids(backend, status="completed"),
            "running": listed_ids(backend, status="running"),
            "host_unreachable": listed_ids(backend, status="host_unreachable"),
            "strategy": listed_ids(backend, strategy="multi_timeframe_mlp"),
            "MSFT": listed_ids(backend, symbol="MSFT"),
            "AAPL": listed_ids(backend, symbol="AAPL"),
            "4h": listed_ids(backend, timeframe="4h"),
            "tag": listed_ids(backend, tag="nightly"),
            "after": listed_ids(backend, created_after=created[via]),
            "before": listed_ids(backend, created_before=created[on_host]),
            "before a date": listed_ids(backend, created_before="2000-01-01"),
        }
        pages = [
            backend.get("/api/trainings", params={"limit": 1, "offset": offset}).json()
            for offset in range(4)
        ]
        unknown = backend.get("/api/trainings", params={"symbols": "MSFT", "limit": 5})
        bad_status = backend.get("/api/trainings", params={"status": "finished"})
        counts = training_counts(backend)

    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["tags"] == ["nightly", "msft"]
    assert everything["total"] == 3
    where = {
        item["training_id"]: (item["routed_to"], item["origin"], item["host_reachable"])
        for item in everything["items"]
    }
    assert where == {
        via: ("host_service", "backend", True),
        on_host: ("host_service", "host", True),
        local: ("local", "backend", None),
    }
    assert [item["training_id"] for item in everything["items"]] == [via, on_host, local]
    assert set(filtered["completed"]) == {via, on_host, local}
    assert filtered["running"] == filtered["host_unreachable"] == []
    assert filtered["strategy"] == [on_host]
    assert filtered["MSFT"] == [on_host, local]
    assert filtered["AAPL"] == [via, on_host]
    assert filtered["4h"] == [on_host]
    assert filtered["tag"] == [local]
    assert filtered["after"] == [via]
    assert filtered["before"] == [local]
    assert filtered["before a date"] == []
    # Paged honestly: one total across host and local, every item once, in order.
    assert [page["total"] for page in pages] == [3, 3, 3, 3]
    assert [item["training_id"] for page in pages for item in page["items"]] == [
        via,
        on_host,
        local,
    ]
    assert unknown.status_code == 422
    assert "'symbols'" in unknown.json()["detail"]
    accepted = unknown.json()["detail"].split("it accepts ")[1].split(", ")
    assert {"status", "strategy", "symbol", "timeframe", "tag"} <= set(accepted)
    assert bad_status.status_code == 422
    assert "status" in bad_status.json()["detail"]
    assert counts == {
        ("host_service", "backend", "completed"): 1.0,
        ("host_service", "host", "completed"): 1.0,
        ("local", "backend", "completed"): 1.0,
    }
