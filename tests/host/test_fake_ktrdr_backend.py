"""The fake KTRDR backend keeps KTRDR's worker protocol (proof that the fixture works).

Workers here are plain httpx calls, plus a minimal worker app served by uvicorn where the
backend has to call back (health checks, dispatch, operation polling).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from tests.conftest import find_free_port
from tests.fixtures.fake_ktrdr_backend import FakeKtrdrBackend
from tests.fixtures.servers import serve_app
from tests.host.ktrdr_bodies import (
    ERA_C_OPERATION_READS,
    ERA_C_RESULT_SUMMARY_READS,
    FieldRead,
    era_c_registration_body,
    problems_with,
)

STRATEGY_YAML = "name: momentum_mlp\nmodel:\n  type: mlp\n"
TRAINING = {"strategy_yaml": STRATEGY_YAML, "symbols": ["AAPL"], "timeframes": ["1h"]}
RESULT = {
    "model_path": "models/momentum_mlp/1h_v1",
    "artifacts": {"model_path": "models/momentum_mlp/1h_v1"},
    "training_metrics": {"final_train_accuracy": 0.61},
    "test_metrics": {"test_accuracy": 0.58, "test_loss": 0.93},
    "model_info": {"parameters_count": 1234},
}


@dataclass
class MinimalWorker:
    """Just enough of a training worker for the backend to call back into."""

    status: str = "running"
    busy: bool = False
    start_bodies: list[dict[str, Any]] = field(default_factory=list)
    shutdown_notices: int = 0
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        def health() -> dict[str, Any]:
            current = self.start_bodies[-1]["task_id"] if self.busy else None
            worker_status = "busy" if self.busy else "idle"
            return {"healthy": True, "worker_status": worker_status, "current_operation": current}

        @app.post("/training/start")
        def start(body: dict[str, Any]) -> dict[str, Any]:
            if self.busy:
                raise HTTPException(503, "Worker busy")
            self.busy = True
            self.start_bodies.append(body)
            return {"success": True, "operation_id": body["task_id"], "status": "started"}

        @app.get("/api/v1/operations/{operation_id}")
        def operation(operation_id: str) -> dict[str, Any]:
            done = self.status == "completed"
            progress: dict[str, Any] = {"percentage": 100.0 if done else 50.0}
            progress["current_step"] = "Epoch 1/2"
            progress |= {"steps_completed": 1, "steps_total": 2, "items_processed": 10}
            progress |= {"items_total": 20, "current_item": None}
            data: dict[str, Any] = {"operation_id": operation_id, "status": self.status}
            data["progress"] = progress
            data |= {"result_summary": RESULT if done else None, "error_message": None}
            data["completed_at"] = "2025-12-31T12:00:00Z" if done else None
            return {"success": True, "data": data}

        @app.get("/api/v1/operations/{operation_id}/metrics")
        def metrics(operation_id: str, cursor: int = 0) -> dict[str, Any]:
            entries = [{"epoch": 0, "train_loss": 1.0}, {"epoch": 1, "train_loss": 0.8}]
            fresh = entries[cursor:]
            return {"success": True, "data": {"metrics": fresh, "new_cursor": len(entries)}}

        @app.post("/backend-shutdown")
        def backend_shutdown() -> dict[str, bool]:
            self.shutdown_notices += 1
            return {"acknowledged": True}

        return app


@pytest.fixture
def worker() -> Iterator[MinimalWorker]:
    fake = MinimalWorker()
    with serve_app(fake.app(), find_free_port()) as url:
        fake.url = url
        yield fake


def register(backend: FakeKtrdrBackend, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{backend.url}/api/v1/workers/register", json=body, timeout=10.0)


def test_registering_twice_keeps_one_available_worker(
    fake_ktrdr_backend: FakeKtrdrBackend,
) -> None:
    body = era_c_registration_body("host-a", "http://127.0.0.1:5002", gpu=True)
    first, again = register(fake_ktrdr_backend, body), register(fake_ktrdr_backend, body)

    assert first.status_code == again.status_code == 200
    assert again.json()["status"] == "available"
    listed = httpx.get(
        f"{fake_ktrdr_backend.url}/api/v1/workers",
        params={"worker_type": "training", "status": "available"},
    ).json()
    assert [w["worker_id"] for w in listed] == ["host-a"]
    assert listed[0]["capabilities"] == {"gpu": True, "gpu_type": "CUDA", "gpu_count": 1}


def test_after_a_backend_restart_the_worker_is_unknown_until_it_registers_again(
    fake_ktrdr_backend: FakeKtrdrBackend,
) -> None:
    body = era_c_registration_body("host-a", "http://127.0.0.1:5002")
    register(fake_ktrdr_backend, body)
    worker_url = f"{fake_ktrdr_backend.url}/api/v1/workers/host-a"
    assert httpx.get(worker_url).status_code == 200

    httpx.post(f"{fake_ktrdr_backend.url}/fake/restart")

    assert httpx.get(worker_url).status_code == 404
    assert register(fake_ktrdr_backend, body).status_code == 200
    assert httpx.get(worker_url).json()["worker_id"] == "host-a"


def test_a_new_worker_id_on_a_known_endpoint_replaces_the_old_worker(
    fake_ktrdr_backend: FakeKtrdrBackend,
) -> None:
    register(fake_ktrdr_backend, era_c_registration_body("old-id", "http://127.0.0.1:5002"))
    register(fake_ktrdr_backend, era_c_registration_body("new-id", "http://127.0.0.1:5002"))

    listed = httpx.get(f"{fake_ktrdr_backend.url}/api/v1/workers").json()
    assert [w["worker_id"] for w in listed] == ["new-id"]


def test_registration_is_refused_with_503_while_the_backend_shuts_down(
    fake_ktrdr_backend: FakeKtrdrBackend, worker: MinimalWorker
) -> None:
    register(fake_ktrdr_backend, era_c_registration_body("host-a", worker.url))

    httpx.post(f"{fake_ktrdr_backend.url}/fake/shutdown")
    refused = register(fake_ktrdr_backend, era_c_registration_body("host-a", worker.url))

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert worker.shutdown_notices == 1


def test_a_bad_worker_type_is_refused_with_422(fake_ktrdr_backend: FakeKtrdrBackend) -> None:
    body = era_c_registration_body("host-a", "http://127.0.0.1:5002") | {"worker_type": "gpu"}
    assert register(fake_ktrdr_backend, body).status_code == 422


def test_training_is_dispatched_to_the_registered_worker_and_followed_to_its_result(
    fake_ktrdr_backend: FakeKtrdrBackend, worker: MinimalWorker
) -> None:
    register(fake_ktrdr_backend, era_c_registration_body("host-a", worker.url))

    started = httpx.post(f"{fake_ktrdr_backend.url}/api/v1/trainings/start", json=TRAINING)
    operation_id = started.json()["operation_id"]
    sent = worker.start_bodies[0]
    operation_url = f"{fake_ktrdr_backend.url}/api/v1/operations/{operation_id}"
    running = httpx.get(operation_url).json()["data"]
    worker.status, worker.busy = "completed", False
    finished = httpx.get(operation_url).json()["data"]
    httpx.post(f"{fake_ktrdr_backend.url}/fake/health-checks")

    assert started.status_code == 200
    assert sent["task_id"] == operation_id
    assert set(sent) == {"task_id", "strategy_yaml", "strategy_path", "symbols", "timeframes",
                         "start_date", "end_date"}  # fmt: skip
    assert sent["strategy_yaml"] == STRATEGY_YAML
    assert running["status"] == "running"
    assert running["progress"]["percentage"] == 50.0
    assert finished["status"] == "completed"
    assert problems_with(finished["result_summary"], ERA_C_RESULT_SUMMARY_READS) == []
    assert [e["epoch"] for e in finished["metrics"]["epochs"]] == [0, 1]
    assert fake_ktrdr_backend.refresh_errors == []
    assert fake_ktrdr_backend.workers["host-a"].status == "available"


def test_a_gpu_worker_is_chosen_before_a_cpu_worker(
    fake_ktrdr_backend: FakeKtrdrBackend, worker: MinimalWorker
) -> None:
    register(fake_ktrdr_backend, era_c_registration_body("cpu-host", "http://127.0.0.1:9"))
    register(fake_ktrdr_backend, era_c_registration_body("gpu-host", worker.url, gpu=True))

    started = httpx.post(f"{fake_ktrdr_backend.url}/api/v1/trainings/start", json=TRAINING)

    assert started.json()["worker_id"] == "gpu-host"
    assert fake_ktrdr_backend.workers["gpu-host"].status == "busy"


def test_a_status_word_ktrdr_does_not_know_is_a_refresh_error(
    fake_ktrdr_backend: FakeKtrdrBackend, worker: MinimalWorker
) -> None:
    register(fake_ktrdr_backend, era_c_registration_body("host-a", worker.url))
    started = httpx.post(f"{fake_ktrdr_backend.url}/api/v1/trainings/start", json=TRAINING)
    worker.status = "stopped"

    httpx.get(f"{fake_ktrdr_backend.url}/api/v1/operations/{started.json()['operation_id']}")

    assert len(fake_ktrdr_backend.refresh_errors) == 1
    assert "status" in fake_ktrdr_backend.refresh_errors[0]


def test_three_failed_health_checks_make_a_worker_unavailable(
    fake_ktrdr_backend: FakeKtrdrBackend,
) -> None:
    dead = f"http://127.0.0.1:{find_free_port()}"
    register(fake_ktrdr_backend, era_c_registration_body("gone", dead))

    states = [
        httpx.post(f"{fake_ktrdr_backend.url}/fake/health-checks", timeout=30.0).json()[0]["status"]
        for _ in range(3)
    ]

    assert states == ["available", "available", "temporarily_unavailable"]


def test_problems_with_names_missing_and_mistyped_fields() -> None:
    reads = [*ERA_C_OPERATION_READS[:2], FieldRead("result_summary", (dict,), "result")]
    answer = {"status": "running", "progress": {"percentage": True}}

    assert problems_with(answer, reads) == [
        "progress.percentage: bool where (<class 'int'>, <class 'float'>) expected",
        "result_summary: missing (result)",
    ]
