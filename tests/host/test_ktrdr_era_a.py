"""Era A (KTRDR 2025-07-24 to 10-11) against a real host process: its exact bodies, its reads.

The facts (paths, types, terminal words) are in tests/host/ktrdr_bodies.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.host.ktrdr_bodies import (
    ERA_A_CANCELLED,
    ERA_A_FINAL_STATUS_READS,
    ERA_A_HEALTH_READS,
    ERA_A_HOST_CLIENT_START_BODY,
    ERA_A_HOST_CLIENT_TERMINAL,
    ERA_A_SESSIONS_READS,
    ERA_A_START_BODY,
    ERA_A_START_BODY_2BDFF5E8,
    ERA_A_START_READS,
    ERA_A_STATUS_READS,
    ERA_A_STOP_READS,
    era_a_stop_body,
    problems_with,
)
from tests.host.ktrdr_polling import ktrdr_client, ktrdr_host, poll_json

__all__ = ["ktrdr_client", "ktrdr_host"]
pytestmark = pytest.mark.slow

ERA_A_TERMINAL = {"completed", "failed"} | ERA_A_CANCELLED
# The sample data covers 2023: the example dates of the long run are moved into it.
SAMPLE_DATES = {"start_date": "2023-01-01", "end_date": "2023-12-31"}


def _start(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/training/start", json=body)
    assert response.status_code == 200, response.text
    assert problems_with(response.json(), ERA_A_START_READS) == []
    session_id: str = response.json()["session_id"]
    assert session_id
    return session_id


def test_health_says_healthy(ktrdr_client: httpx.Client) -> None:
    health = ktrdr_client.get("/health")

    assert health.status_code == 200
    assert problems_with(health.json(), ERA_A_HEALTH_READS) == []
    assert health.json()["healthy"] is True


def test_docker_backend_training_is_followed_to_real_final_metrics_and_a_model(
    ktrdr_client: httpx.Client,
) -> None:
    session_id = _start(ktrdr_client, ERA_A_START_BODY)

    final = poll_json(
        ktrdr_client, f"/training/status/{session_id}", lambda s: s["status"] in ERA_A_TERMINAL
    )

    assert final["status"] == "completed", final["error"]
    assert problems_with(final, ERA_A_STATUS_READS + ERA_A_FINAL_STATUS_READS) == []
    training, test = final["metrics"]["training"], final["metrics"]["test"]
    assert training["epochs_completed"] == ERA_A_START_BODY["training_configuration"]["epochs"]
    assert 0.0 < training["final_train_accuracy"] <= 1.0
    assert training["final_train_loss"] > 0.0
    assert training["training_time_minutes"] > 0.0
    assert final["metrics"]["validation"]["val_loss"] > 0.0
    assert test["test_loss"] > 0.0 and 0.0 < test["test_accuracy"] <= 1.0
    performance = ktrdr_client.get(f"/trainings/{session_id}/performance").json()
    assert test["test_accuracy"] == pytest.approx(performance["test_metrics"]["accuracy"])
    progress = final["progress"]
    assert progress["items_processed"] == progress["items_total"] > 0
    assert progress["progress_percent"] == 100.0
    assert final["resource_usage"]["gpu_used"] is False  # the test host trains on the CPU
    model_dir = Path(final["artifacts"]["model_path"])
    assert (model_dir / "model.pt").is_file()
    assert json.loads((model_dir / "metadata.json").read_text())["is_trained"] is True
    assert final["model_info"]["parameters_count"] > 0


def test_2bdff5e8_body_is_accepted(ktrdr_client: httpx.Client) -> None:
    body = {**ERA_A_START_BODY_2BDFF5E8}
    body["training_configuration"] = {**body["training_configuration"], "epochs": 1}
    session_id = _start(ktrdr_client, body)

    final = poll_json(
        ktrdr_client, f"/training/status/{session_id}", lambda s: s["status"] in ERA_A_TERMINAL
    )

    assert final["status"] == "completed", final["error"]


def test_stop_answers_stopped_with_a_checkpoint_and_the_session_can_be_cleaned_up(
    ktrdr_client: httpx.Client,
) -> None:
    body = {
        **ERA_A_HOST_CLIENT_START_BODY,
        "training_configuration": {
            **ERA_A_HOST_CLIENT_START_BODY["training_configuration"],
            **SAMPLE_DATES,
            "batch_size": 8,
        },
    }
    session_id = _start(ktrdr_client, body)
    live = poll_json(
        ktrdr_client,
        f"/training/status/{session_id}",
        lambda s: s["status"] == "running" and s["progress"]["epoch"] >= 2,
    )

    stopped = ktrdr_client.post("/training/stop", json=era_a_stop_body(session_id))
    status = ktrdr_client.get(f"/training/status/{session_id}").json()
    listed = ktrdr_client.get("/training/sessions").json()
    cleaned = ktrdr_client.delete(f"/training/sessions/{session_id}")

    # a live snapshot after an epoch: progress, live and best metrics, all typed as KTRDR reads
    assert problems_with(live, ERA_A_STATUS_READS) == []
    assert live["metrics"]["best"]["val_accuracy"] > 0.0
    assert 0 < live["progress"]["items_processed"] < live["progress"]["items_total"]
    assert live["progress"]["current_item"] == "AAPL 1h"
    assert stopped.status_code == 200
    assert problems_with(stopped.json(), ERA_A_STOP_READS) == []
    assert stopped.json()["status"] == "stopped"
    assert stopped.json()["checkpoint_saved"] is True
    assert status["status"] == "stopped"
    assert status["status"] in ERA_A_CANCELLED & ERA_A_HOST_CLIENT_TERMINAL
    assert problems_with(listed, ERA_A_SESSIONS_READS) == []
    item = next(s for s in listed["sessions"] if s["session_id"] == session_id)
    assert item["status"] == "stopped"
    assert item["gpu_allocated"] is False
    assert item["error"] is None
    assert cleaned.status_code == 200
    assert ktrdr_client.get(f"/training/status/{session_id}").status_code == 404


@pytest.mark.parametrize(
    ("strategy_config", "named"),
    [
        ("/app/strategies/momentum_mlp.txt", ".yaml"),
        ("/app/strategies/../momentum_mlp.yaml", "'..'"),
        ("/etc/momentum_mlp.yaml", "strategies directory"),
        ("/app/strategies/no_such_strategy.yaml", "no_such_strategy"),
    ],
)
def test_strategy_paths_that_are_not_a_strategy_file_are_refused_with_422(
    ktrdr_client: httpx.Client, strategy_config: str, named: str
) -> None:
    body = {
        **ERA_A_START_BODY,
        "model_configuration": {
            **ERA_A_START_BODY["model_configuration"],
            "strategy_config": strategy_config,
        },
    }
    response = ktrdr_client.post("/training/start", json=body)

    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]
