"""``GET /trainings/{id}/events``: Server-Sent Events from the session's event log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.sse import assert_complete_stream, collect, follow_then_reconnect
from tests.host.conftest import FINAL, AppFactory, wait_for_status

# Long enough to drop the connection mid-run, short enough for a test.
EVENTFUL_BODY: dict[str, Any] = {
    "symbol": "AAPL",
    "timeframe": "1h",
    "config": {"epochs": 3, "batch_size": 16, "early_stopping": {"enabled": False}},
}


def test_reconnect_with_last_event_id_misses_nothing(start_app: AppFactory) -> None:
    url, _app = start_app()
    with httpx.Client(base_url=url) as client:
        started = client.post("/trainings/start", json=EVENTFUL_BODY)
        assert started.status_code == 202, started.text
        path = f"/trainings/{started.json()['training_id']}/events"

        received, statuses_at_drop = follow_then_reconnect(client, path)
        assert statuses_at_drop == ["queued", "running"], "dropped after the run ended"
        full_log = collect(client, path)

    assert_complete_stream(received, full_log, epochs=3)
    # A finished training's stream replays its log and ends at once.
    assert full_log[-1].event == "end"


def test_every_trainings_event_ids_start_at_1_and_end_has_its_own(
    start_app: AppFactory,
) -> None:
    url, _app = start_app()
    body = {**EVENTFUL_BODY, "config": {"epochs": 1}}
    with httpx.Client(base_url=url, timeout=30) as client:
        streams = []
        for _ in range(2):
            training_id = client.post("/trainings/start", json=body).json()["training_id"]
            wait_for_status(client, training_id, FINAL)
            path = f"/trainings/{training_id}/events"
            streams.append((collect(client, path), collect(client, path, last_event_id=1)))

    for full, after_first in streams:
        ids = [event.id for event in full]
        assert ids[0] == 1 and ids == sorted(set(ids)), ids
        assert full[-1].event == "end" and full[-2].event == "status"
        assert full[-1].id == full[-2].id + 1
        # Last-Event-ID: 1 resumes after the first event, in either training.
        assert after_first == full[1:]


def test_events_of_unknown_training_is_404(start_app: AppFactory) -> None:
    url, _app = start_app()
    response = httpx.get(f"{url}/trainings/nope/events")
    assert response.status_code == 404
    assert response.json()["error"] == "SessionNotFoundError"


def test_bad_last_event_id_is_422(start_app: AppFactory) -> None:
    url, _app = start_app()
    with httpx.Client(base_url=url) as client:
        started = client.post("/trainings/start", json={**EVENTFUL_BODY, "config": {"epochs": 1}})
        training_id = started.json()["training_id"]
        response = client.get(
            f"/trainings/{training_id}/events", headers={"Last-Event-ID": "yesterday"}
        )
    assert response.status_code == 422
    assert "Last-Event-ID" in response.json()["detail"]


def test_status_phase_eta_mid_epoch_and_stop_requested(start_app: AppFactory) -> None:
    url, _app = start_app()
    long_run = {**EVENTFUL_BODY, "config": {**EVENTFUL_BODY["config"], "epochs": 200}}
    with httpx.Client(base_url=url, timeout=30) as client:
        training_id = client.post("/trainings/start", json=long_run).json()["training_id"]
        assert client.get(f"/trainings/{training_id}/status").json()["phase"] in {
            "queued",
            "starting",
        }

        def mid_epoch(body: dict[str, Any]) -> bool:
            progress = body["progress"]
            return body["status"] == "running" and 0 < progress["batch"] < progress["total_batches"]

        running = wait_for(client, training_id, mid_epoch)
        stopped = client.post(f"/trainings/{training_id}/stop").json()
        final = wait_for(client, training_id, lambda body: body["status"] in FINAL)

    assert running["phase"] == "training"
    assert running["progress"]["eta_seconds"] is not None and running["progress"]["eta_seconds"] > 0
    assert running["stop_requested"] is False
    assert stopped["stop_requested"] is True
    assert final["status"] == "cancelled"
    assert final["phase"] is None
    assert final["stopped_early"] is False


def test_completed_status_has_best_epoch(start_app: AppFactory) -> None:
    url, _app = start_app()
    with httpx.Client(base_url=url, timeout=30) as client:
        body = {**EVENTFUL_BODY, "config": {"epochs": 3}}
        training_id = client.post("/trainings/start", json=body).json()["training_id"]
        final = wait_for_status(client, training_id, {"completed"})
        history = client.get(f"/trainings/{training_id}/performance").json()["history"]

    best = min(history, key=lambda row: (row["val_loss"], row["epoch"]))
    assert final["best_epoch"] == best["epoch"]
    assert final["phase"] is None
    assert isinstance(final["stopped_early"], bool)


def wait_for(
    client: httpx.Client, training_id: str, reached: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll the status (every 20 ms) until ``reached``; fail after two minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/trainings/{training_id}/status").json()
        if reached(body):
            return body
        time.sleep(0.02)
    pytest.fail(f"training {training_id} never reached the expected state: {body}")


def test_logs_of_a_training_are_plain_text_with_tail(start_app: AppFactory) -> None:
    url, app = start_app()
    with httpx.Client(base_url=url, timeout=30) as client:
        body = {**EVENTFUL_BODY, "config": {"epochs": 1}}
        training_id = client.post("/trainings/start", json=body).json()["training_id"]
        wait_for_status(client, training_id, {"completed"})
        whole = client.get(f"/trainings/{training_id}/logs")
        last_two = client.get(f"/trainings/{training_id}/logs", params={"tail": 2})
        zero = client.get(f"/trainings/{training_id}/logs", params={"tail": 0})
        unknown = client.get("/trainings/nope/logs")

    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("text/plain")
    lines = whole.text.splitlines()
    assert any("worker started" in line for line in lines)
    assert any("train / " in line and "validation" in line for line in lines), "no data report"
    # Every line starts with its date and time.
    assert all(line[:4].isdigit() and line[10] == " " for line in lines if line[:1] != " ")
    assert last_two.text.splitlines() == lines[-2:]
    assert zero.status_code == 422
    assert unknown.status_code == 404
    log_file = app.state.settings.log_dir / "trainings" / f"{training_id}.log"
    assert log_file.read_text() == whole.text
