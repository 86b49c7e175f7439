"""Persistence across process boundaries, on SQLite AND a real PostgreSQL server.

The service runs as a subprocess (``run_host_service``) so kill -9 is a real crash.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.databases import on_both_databases
from tests.fixtures.servers import run_host_service
from tests.host.conftest import QUICK_BODY, wait_for_progress, wait_for_status

pytestmark = [pytest.mark.slow, on_both_databases]


@pytest.fixture
def database_env(database_url: str) -> dict[str, str]:
    """TRAINING_HOST_DATABASE_URL of this test's database (SQLite file, or PostgreSQL)."""
    return {"TRAINING_HOST_DATABASE_URL": database_url}


def test_training_completes_and_survives_restart(
    tmp_path: Path, free_port: int, sample_data_dir: Path, database_env: dict[str, str]
) -> None:
    with run_host_service(tmp_path, free_port, database_env, sample_data_dir) as service:
        client = httpx.Client(base_url=service.url, timeout=30)
        started = client.post("/trainings/start", json={**QUICK_BODY, "training_id": "p1"})
        assert started.status_code == 202, started.text
        final = wait_for_status(client, "p1", {"completed"}, timeout=180)

        service.restart()

        after = client.get("/trainings/p1/status").json()
        assert after["status"] == "completed"
        assert after["model_path"] == final["model_path"]
        assert len(client.get("/trainings/p1/performance").json()["history"]) == 2


def test_kill_9_during_training_resumes_and_completes(
    tmp_path: Path, free_port: int, sample_data_dir: Path, database_env: dict[str, str]
) -> None:
    body = {
        "training_id": "crash",
        "symbol": "AAPL",
        "timeframe": "1h",
        "config": {"epochs": 6, "batch_size": 16, "early_stopping": {"enabled": False}},
    }
    with run_host_service(tmp_path, free_port, database_env, sample_data_dir) as service:
        client = httpx.Client(base_url=service.url, timeout=30)
        assert client.post("/trainings/start", json=body).status_code == 202
        wait_for_progress(client, "crash", epochs=2, timeout=180)

        service.kill()
        service.restart()

        final = wait_for_status(client, "crash", {"completed"}, timeout=240)
        assert final["resume_count"] >= 1
        assert final["progress"]["epoch"] == 6
        history = client.get("/trainings/crash/performance").json()["history"]
        assert [row["epoch"] for row in history] == sorted({row["epoch"] for row in history})
