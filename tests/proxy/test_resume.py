"""Resume through the backend and on the host service itself: a worker killed with -9
ends failed with a checkpoint, and POST .../resume continues it to completion."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings

from tests.fixtures.processes import kill_worker
from tests.fixtures.servers import HostServiceProcess
from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import run_backend, wait_for_status

pytestmark = pytest.mark.slow

# Three epochs: long enough to be killed after the first checkpoint.
RESUMABLE = {
    "strategy": "momentum_mlp",
    "config": {"epochs": 3, "batch_size": 32, "early_stopping": {"enabled": False}},
}


def _fail_by_kill(client: httpx.Client, prefix: str, checkpoint: Path, parent_pid: int) -> str:
    """Start a training, kill -9 its worker after the first checkpoint; its id."""
    started = client.post(f"{prefix}/start", json=RESUMABLE)
    assert started.status_code == 202, started.text
    training_id: str = started.json()["training_id"]
    wait_until(lambda: (checkpoint / f"{training_id}.ckpt").is_file(), 180, "first checkpoint")
    kill_worker(parent_pid)
    return training_id


def _wait(client: httpx.Client, url: str, statuses: set[str]) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(url).json()
        return body if body["status"] in statuses else None

    result: dict[str, Any] = wait_until(reached, 300, f"{url} in {statuses}")
    return result


def test_host_resumes_a_killed_training_and_refuses_what_it_cannot_resume(
    host_service: HostServiceProcess, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "host" / "checkpoints"
    with httpx.Client(base_url=host_service.url, timeout=30) as host:
        training_id = _fail_by_kill(host, "/trainings", checkpoints, host_service.process.pid)
        failed = _wait(host, f"/trainings/{training_id}/status", {"failed", "completed"})
        resumed = host.post(f"/trainings/{training_id}/resume")
        again = host.post(f"/trainings/{training_id}/resume")
        done = _wait(host, f"/trainings/{training_id}/status", {"completed", "failed"})
        after = host.post(f"/trainings/{training_id}/resume")
        unknown = host.post("/trainings/no-such-training/resume")
        # Stopped while queued: cancelled before any checkpoint.
        host.post("/trainings/start", json=RESUMABLE)  # takes the only slot
        queued = host.post("/trainings/start", json=RESUMABLE).json()["training_id"]
        host.post(f"/trainings/{queued}/stop")
        checkpointless = host.post(f"/trainings/{queued}/resume")

    assert failed["status"] == "failed"
    assert failed["error"] == "worker exited with code -9"
    assert resumed.status_code == 202, resumed.text
    # Queued again; a free slot may have launched it before the answer was written.
    assert resumed.json()["status"] in {"queued", "running"}
    assert resumed.json()["resume_count"] == 1
    assert again.status_code == 409
    assert again.json()["error"] == "NotResumableError"
    assert done["status"] == "completed", done["error"]
    assert done["progress"]["percent"] == 100
    assert after.status_code == 409
    assert "is completed" in after.json()["detail"]
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "SessionNotFoundError"
    assert checkpointless.status_code == 409, checkpointless.text
    assert "no checkpoint" in checkpointless.json()["detail"]


def test_backend_resumes_host_and_local_trainings(
    proxy_settings: Settings, host_service: HostServiceProcess, tmp_path: Path
) -> None:
    settings = proxy_settings.model_copy(update={"training_host_service_url": host_service.url})
    with run_backend(settings) as backend:
        on_host = _fail_by_kill(
            backend, "/api/trainings", tmp_path / "host" / "checkpoints", host_service.process.pid
        )
        assert wait_for_status(backend, on_host, {"failed"})["routed_to"] == "host_service"
        host_resume = backend.post(f"/api/trainings/{on_host}/resume")
        host_done = wait_for_status(backend, on_host, {"completed"}, timeout=300)
        unknown = backend.post("/api/trainings/no-such-training/resume")

    local_settings = settings.model_copy(update={"use_training_host_service": False})
    with run_backend(local_settings) as backend:
        local = _fail_by_kill(
            backend, "/api/trainings", proxy_settings.checkpoints_dir, os.getpid()
        )
        assert wait_for_status(backend, local, {"failed"})["routed_to"] == "local"
        local_resume = backend.post(f"/api/trainings/{local}/resume")
        local_done = wait_for_status(backend, local, {"completed"}, timeout=300)
        local_again = backend.post(f"/api/trainings/{local}/resume")

    assert host_resume.status_code == 202, host_resume.text
    assert host_resume.json()["routed_to"] == "host_service"
    assert host_resume.json()["status"] in {"queued", "running"}
    assert host_done["resume_count"] == 1
    assert unknown.status_code == 404
    assert unknown.json() == {
        "detail": "no training with id 'no-such-training'",
        "error": "TrainingNotFoundError",
    }
    assert local_resume.status_code == 202, local_resume.text
    assert local_resume.json()["routed_to"] == "local"
    assert local_done["resume_count"] == 1
    assert local_again.status_code == 409
    assert local_again.json()["error"] == "NotResumableError"
    assert "is completed" in local_again.json()["detail"]
