"""The truth about a host training while its host is down, against the real host process:
killed with SIGKILL mid-run, then started again."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings

from tests.conftest import find_free_port
from tests.fixtures.servers import run_host_service
from tests.fixtures.sse import SseEvent, collect, read_events
from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import (
    host_settings,
    run_backend,
    training_counts,
    wait_for_status,
)

pytestmark = pytest.mark.slow

# Six epochs: killed after the second, resumed from its checkpoint when the host is back.
RESUMABLE = {
    "strategy": "momentum_mlp",
    "symbols": ["AAPL"],
    "timeframes": ["1h"],
    "config": {"epochs": 6, "batch_size": 16, "early_stopping": {"enabled": False}},
}


def relay_until_epoch(backend: httpx.Client, path: str, epoch: int) -> list[SseEvent]:
    """The training's events relayed through the backend, read until the given epoch ends."""
    received: list[SseEvent] = []
    with backend.stream("GET", path, timeout=180.0) as response:
        assert response.status_code == 200, response.read()
        for event in read_events(response):
            received.append(event)
            if event.event == "epoch" and event.data["epoch"] >= epoch:
                return received
    pytest.fail(f"the stream ended before epoch {epoch}")


def assert_not_running(body: dict[str, Any]) -> None:
    assert body["status"] == "host_unreachable", body
    assert body["progress"]["eta_seconds"] is None
    assert body["host_reachable"] is False


def test_host_killed_mid_run_answers_host_unreachable_then_the_resumed_training(
    proxy_settings: Settings, tmp_path: Path, sample_data_dir: Path
) -> None:
    with run_host_service(tmp_path / "host", find_free_port(), data_dir=sample_data_dir) as host:
        settings = host_settings(proxy_settings, host, breaker_recovery_timeout_seconds=1.0)
        with run_backend(settings) as backend:
            started = backend.post("/api/trainings/start", json=RESUMABLE)
            assert started.status_code == 202, started.text
            training_id = started.json()["training_id"]
            base = f"/api/trainings/{training_id}"
            relayed = relay_until_epoch(backend, f"{base}/events", epoch=2)
            seen = backend.get(f"{base}/status").json()
            seen_performance = backend.get(f"{base}/performance").json()
            host.kill()

            while_down = [backend.get(f"{base}/status").json() for _ in range(3)]
            listed = backend.get("/api/trainings").json()
            by_status = {
                status: backend.get("/api/trainings", params={"status": status}).json()
                for status in ("host_unreachable", "running")
            }
            performance = backend.get(f"{base}/performance")
            resume_after = relayed[len(relayed) // 2].id
            replayed = collect(backend, f"{base}/events", last_event_id=resume_after)
            counts_while_down = training_counts(backend)

            host.restart()
            # Nobody asks about the training: the health poller alone settles the table
            # that /metrics counts (a status request would ask the host itself).
            settled = wait_until(
                lambda: (
                    counts
                    if (counts := training_counts(backend))
                    and ("host_service", "backend", "host_unreachable") not in counts
                    else None
                ),
                60,
                "the routing table settled without a request",
            )
            final = wait_for_status(backend, training_id, {"completed"}, 240)

    assert seen["status"] == "running"
    assert seen["progress"]["eta_seconds"] is not None
    # While the host is down: never running with a live ETA, and said why.
    for body in while_down:
        assert_not_running(body)
        assert body["last_known_status"] == "running"
        assert body["unreachable_since"] == while_down[0]["unreachable_since"]
        assert "settled when the host returns" in body["detail"]
    assert datetime.fromisoformat(while_down[0]["unreachable_since"]) >= datetime.fromisoformat(
        seen["created_at"]
    )
    [item] = [item for item in listed["items"] if item["training_id"] == training_id]
    assert_not_running(item)
    assert [i["training_id"] for i in by_status["host_unreachable"]["items"]] == [training_id]
    assert by_status["running"]["total"] == 0
    assert counts_while_down == {("host_service", "backend", "host_unreachable"): 1.0}
    # Performance: what was last seen of it, not a 503.
    assert performance.status_code == 200, performance.text
    assert performance.json()["host_reachable"] is False
    assert performance.json()["status"] == "host_unreachable"
    assert performance.json()["history"] == seen_performance["history"]
    # Events: those relayed, after Last-Event-ID, then the status as it is known, then the end.
    relayed_after = [
        event.id for event in relayed if event.id is not None and event.id > resume_after
    ]
    replayed_ids = [event.id for event in replayed if event.id is not None]
    assert replayed_ids[: len(relayed_after)] == relayed_after
    assert replayed_ids == sorted(set(replayed_ids))
    assert replayed[-1].event == "status" and replayed[-1].id is None
    assert replayed[-1].data["status"] == "host_unreachable"
    assert replayed[-1].data["host_reachable"] is False
    # Back: the real outcome (resumed from its checkpoint), without a user action in between.
    [(key, count)] = [(key, n) for key, n in settled.items() if key[0] == "host_service"]
    assert key[2] in {"queued", "running", "completed"} and count == 1
    assert final["host_reachable"] is True
    assert final["resume_count"] >= 1
