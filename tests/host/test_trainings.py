"""The training lifecycle over real HTTP: start, progress, complete, stop, KTRDR routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from training_engine.artifacts import load_trained_model
from training_engine.device import describe_devices, device_name, resolve_device

from tests.host.conftest import (
    QUICK_BODY,
    AppFactory,
    wait_for_progress,
    wait_for_status,
)
from tests.host.test_api_errors import SLOW_BODY

pytestmark = pytest.mark.slow


@pytest.fixture
def client(start_app: AppFactory) -> httpx.Client:
    url, _ = start_app()
    return httpx.Client(base_url=url, timeout=30)


def test_issue_example_body_trains_to_completion_with_loadable_model(
    client: httpx.Client, tmp_path: Path
) -> None:
    started = client.post("/trainings/start", json=QUICK_BODY)
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["created"] is True
    assert body["status"] in {"queued", "running"}

    percents: list[float] = []
    final = wait_for_status(
        client,
        body["training_id"],
        {"completed"},
        on_poll=lambda b: percents.append(b["progress"]["percent"]),
    )

    assert percents == sorted(percents), "progress percent went backwards"
    assert final["progress"]["percent"] == 100.0
    assert final["progress"]["epoch"] == final["progress"]["total_epochs"] == 2
    assert final["finished_at"] is not None
    # Paths in answers are relative to their setting (here models_dir = tmp_path/models).
    assert not Path(final["model_path"]).is_absolute()
    for answer in ("/trainings", "/health/detailed", f"/trainings/{body['training_id']}/events"):
        assert str(tmp_path) not in client.get(answer).text, answer
    model = load_trained_model(tmp_path / "models" / final["model_path"])
    assert model is not None
    performance = client.get(f"/trainings/{body['training_id']}/performance").json()
    assert len(performance["history"]) == 2
    assert performance["test_metrics"] is not None
    assert performance["baseline_metrics"] is not None
    verdict = performance["evaluation"]["verdict"]
    assert {(c["baseline"], c["metric"]) for c in verdict["comparisons"]} == {
        (b, m) for b in ("majority", "random") for m in ("accuracy", "macro_f1")
    }


def test_stop_running_training_cancels_it_with_checkpoint_and_a_second_stop_is_409(
    client: httpx.Client, tmp_path: Path
) -> None:
    started = client.post("/trainings/start", json={**SLOW_BODY, "training_id": "to-stop"})
    assert started.status_code == 202, started.text
    wait_for_progress(client, "to-stop", epochs=1)

    assert client.post("/trainings/to-stop/stop").status_code == 200
    final = wait_for_status(client, "to-stop", {"cancelled"}, timeout=30)

    assert final["checkpoint_path"] == "to-stop.ckpt"  # relative to checkpoints_dir
    assert (tmp_path / "checkpoints" / final["checkpoint_path"]).exists()
    # Nothing left to stop: the answer names its status and says what to do instead.
    again = client.post("/trainings/to-stop/stop")
    assert again.status_code == 409, again.text
    assert again.json() == {
        "detail": "training 'to-stop' is already cancelled; nothing to stop "
        "(resume it to continue)",
        "error": "NothingToStopError",
    }
    assert client.get("/trainings/to-stop/status").json()["status"] == "cancelled"


def test_list_is_newest_first_and_filters_by_status(client: httpx.Client) -> None:
    for training_id in ("first", "second"):
        body = {**QUICK_BODY, "training_id": training_id}
        assert client.post("/trainings/start", json=body).is_success
    client.post("/trainings/second/stop")
    wait_for_status(client, "first", {"completed"})

    listing = client.get("/trainings", params={"limit": 10}).json()
    assert [item["training_id"] for item in listing["items"]] == ["second", "first"]
    assert listing["total"] == 2
    completed = client.get("/trainings", params={"status": "completed"}).json()
    assert [item["training_id"] for item in completed["items"]] == ["first"]
    page = client.get("/trainings", params={"limit": 1, "offset": 1}).json()
    assert [item["training_id"] for item in page["items"]] == ["first"]


def test_multi_symbol_start_requires_lists(client: httpx.Client) -> None:
    missing = client.post("/trainings/start-multi-symbol", json={"symbols": ["AAPL"]})
    assert missing.status_code == 422
    assert "timeframes" in missing.json()["detail"]
    body: dict[str, Any] = {
        "training_id": "multi",
        "symbols": ["AAPL", "MSFT"],
        "timeframes": ["1h"],
        "config": {"epochs": 1},
    }
    started = client.post("/trainings/start-multi-symbol", json=body)
    assert started.status_code == 202, started.text
    wait_for_status(client, "multi", {"completed"})


def test_ktrdr_routes_start_poll_list_and_delete(client: httpx.Client) -> None:
    body = {
        "session_id": "ktrdr-1",
        "model_configuration": {
            "strategy_config": "strategies/momentum_mlp.yaml",
            "symbols": ["AAPL"],
            "timeframes": ["1h"],
            "model_type": "mlp",
            "multi_symbol": False,
            "unused_by_us": True,
        },
        "training_configuration": {
            "validation_split": 0.2,
            "start_date": None,
            "end_date": None,
            "data_mode": "local",
            "epochs": 1,
        },
        "data_configuration": {"symbols": ["AAPL"]},
        "gpu_configuration": {"enable_gpu": False},
    }
    started = client.post("/training/start", json=body)
    assert started.status_code == 200, started.text
    assert started.json()["session_id"] == "ktrdr-1"
    assert started.json()["gpu_allocated"] is False

    final = wait_for_status(client, "ktrdr-1", {"completed"})
    assert final["progress"]["total_epochs"] == 1
    status = client.get("/training/status/ktrdr-1").json()
    assert status["status"] == "completed"
    assert status["progress"]["progress_percent"] == 100.0
    # KTRDR opens artifacts.model_path itself: the one absolute path; ours are relative.
    assert Path(status["artifacts"]["model_path"]).is_absolute()
    assert status["artifacts"]["host_model_path"] == final["model_path"]
    assert status["artifacts"]["checkpoints"] == ["ktrdr-1.ckpt"]
    sessions = client.get("/training/sessions").json()
    assert [s["session_id"] for s in sessions["sessions"]] == ["ktrdr-1"]
    assert sessions["sessions"][0]["model_path"] == final["model_path"]
    assert not Path(final["model_path"]).is_absolute()
    stopped = client.post("/training/stop", json={"session_id": "ktrdr-1", "save_checkpoint": True})
    assert stopped.json()["status"] == "completed"
    assert stopped.json()["checkpoint_path"] == "ktrdr-1.ckpt"
    assert client.delete("/training/sessions/ktrdr-1").status_code == 200
    assert client.get("/training/status/ktrdr-1").status_code == 404


def test_health_gpu_and_metrics_answer_whatever_the_host_has(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert (health["status"], health["healthy"], health["worker_status"]) == ("ok", True, "idle")
    detailed = client.get("/health/detailed").json()
    assert detailed["database_reachable"] is True
    assert detailed["active_sessions"] == 0
    assert detailed["disk_free_bytes"] > 0
    # What this host has is asked of torch: a GPU machine reports its GPUs, others none.
    gpu = client.get("/gpu/status").json()
    devices = describe_devices()
    assert gpu["available"] is bool(devices)
    assert [d["device"] for d in gpu["devices"]] == [d.device for d in devices]
    advice = client.get("/gpu/recommendations").json()
    assert advice["device"] == (devices[0].device if devices else "cpu")
    assert device_name(resolve_device(advice["device"])) == advice["device"]
    assert advice["batch_size"] > 0
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'route="/health",status="200"' in metrics.text
    assert "training_host_queue_length" in metrics.text


def test_metrics_count_sessions_and_epochs(client: httpx.Client) -> None:
    started = client.post("/trainings/start", json=QUICK_BODY).json()
    wait_for_status(client, started["training_id"], {"completed"})
    text = client.get("/metrics").text
    assert 'training_host_sessions{status="completed"} 1.0' in text
    assert "training_host_epoch_duration_seconds_count 2.0" in text


def test_delete_training_removes_its_rows_checkpoint_and_log_and_refuses_while_running(
    client: httpx.Client, tmp_path: Path
) -> None:
    assert client.post("/trainings/start", json={**SLOW_BODY, "training_id": "gone"}).is_success
    wait_for_progress(client, "gone", epochs=1)
    running = client.delete("/trainings/gone")
    client.post("/trainings/gone/stop")
    wait_for_status(client, "gone", {"cancelled"}, timeout=30)
    checkpoint = tmp_path / "checkpoints" / "gone.ckpt"
    log = tmp_path / "logs" / "trainings" / "gone.log"
    assert checkpoint.is_file() and log.is_file()

    deleted = client.delete("/trainings/gone")

    assert running.status_code == 409, running.text
    assert "running" in running.json()["detail"] and "stop it" in running.json()["detail"]
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "training_id": "gone",
        "deleted": True,
        "files_removed": ["<checkpoints_dir>/gone.ckpt", "<log_dir>/gone.log"],
    }
    assert not checkpoint.exists() and not log.exists()
    assert client.get("/trainings/gone/status").status_code == 404
    assert client.get("/trainings/gone/events").status_code == 404
    assert client.delete("/trainings/gone").status_code == 404
