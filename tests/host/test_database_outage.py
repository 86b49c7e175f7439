"""The host service with its PostgreSQL stopped: 503 JSON answers, a degraded health
report, and normal answers again once the database is back; a full disk degrades too."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.postgres import PostgresServer
from tests.fixtures.servers import run_host_service

pytestmark = pytest.mark.slow

UNAVAILABLE = {"detail": "database unavailable", "error": "OperationalError"}


def test_routes_answer_503_json_while_the_database_is_down(
    postgres_server: PostgresServer, tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    env = {"TRAINING_HOST_DATABASE_URL": postgres_server.url}
    with (
        run_host_service(tmp_path / "host", free_port, env, sample_data_dir) as host,
        httpx.Client(base_url=host.url, timeout=30) as client,
    ):
        before = client.get("/health/detailed").json()
        postgres_server.stop()
        answers = [
            client.get("/trainings"),
            client.get("/trainings/some-id/status"),
            client.post("/trainings/start", json={"symbol": "AAPL", "config": {"epochs": 1}}),
        ]
        during = client.get("/health/detailed").json()
        live = client.get("/health")
        postgres_server.start()
        after_list = client.get("/trainings")
        after = client.get("/health/detailed").json()

    assert before["status"] == "ok"
    assert [answer.status_code for answer in answers] == [503, 503, 503]
    assert all(answer.json() == UNAVAILABLE for answer in answers), [a.text for a in answers]
    assert during["status"] == "degraded"
    assert during["database_reachable"] is False
    assert "database unreachable" in during["problems"]
    assert live.json()["status"] == "ok"  # liveness does not touch the database
    assert after_list.status_code == 200
    assert after["status"] == "ok"


def test_health_is_degraded_when_free_disk_space_is_below_the_threshold(
    tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    env = {"TRAINING_HOST_MIN_FREE_DISK_BYTES": str(10**18)}  # more than any disk has
    with run_host_service(tmp_path / "host", free_port, env, sample_data_dir) as host:
        report = httpx.get(f"{host.url}/health/detailed", timeout=30).json()

    assert report["status"] == "degraded"
    assert report["disk_ok"] is False
    assert report["database_reachable"] is True
    assert report["problems"] == [f"less than {10**18} bytes free on disk"]
