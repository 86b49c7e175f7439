"""Era C (KTRDR 2025-11-10 on): two real host processes registered with one KTRDR backend.

The backend is tests/fixtures/fake_ktrdr_backend.py, which follows KTRDR's worker protocol
(registry, health checks, dispatch, operation proxy, restart and shutdown).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import find_free_port
from tests.fixtures.fake_ktrdr_backend import FakeKtrdrBackend
from tests.fixtures.servers import HostServiceProcess, run_host_service
from tests.host.ktrdr_bodies import (
    ERA_C_HEALTH_READS,
    ERA_C_OPERATION_READS,
    ERA_C_OPERATION_STATUSES,
    ERA_C_RESULT_SUMMARY_READS,
    ERA_C_START_READS,
    era_c_start_body,
    problems_with,
)
from tests.host.test_ktrdr_era_b import strategy_text

pytestmark = pytest.mark.slow

WORKER_IDS = ("host-a", "host-b")
CHECK_SECONDS = 0.5


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"not true after {timeout}s: {what}")


@pytest.fixture
def hosts(
    tmp_path: Path, sample_data_dir: Path, fake_ktrdr_backend: FakeKtrdrBackend
) -> Iterator[list[HostServiceProcess]]:
    """Two host processes, each told to register with the fake backend."""
    started: list[HostServiceProcess] = []
    contexts = []
    try:
        for worker_id in WORKER_IDS:
            env = {
                "TRAINING_HOST_KTRDR_BACKEND_URL": fake_ktrdr_backend.url,
                "TRAINING_HOST_KTRDR_WORKER_ID": worker_id,
                "TRAINING_HOST_KTRDR_REGISTRATION_CHECK_SECONDS": str(CHECK_SECONDS),
            }
            context = run_host_service(
                tmp_path / worker_id, find_free_port(), env=env, data_dir=sample_data_dir
            )
            started.append(context.__enter__())
            contexts.append(context)
        yield started
    finally:
        for context in reversed(contexts):
            context.__exit__(None, None, None)


def _both_registered(backend: FakeKtrdrBackend) -> bool:
    return set(WORKER_IDS) <= set(backend.workers)


def _dispatch(backend: FakeKtrdrBackend, text: str) -> dict[str, Any]:
    body = {"strategy_yaml": text, "symbols": ["AAPL"], "timeframes": ["1h"]}
    response = httpx.post(f"{backend.url}/api/v1/trainings/start", json=body, timeout=60.0)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _operation(backend: FakeKtrdrBackend, operation_id: str) -> dict[str, Any]:
    response = httpx.get(f"{backend.url}/api/v1/operations/{operation_id}", timeout=60.0)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_two_hosts_register_take_trainings_and_register_again_after_a_backend_restart(
    hosts: list[HostServiceProcess], fake_ktrdr_backend: FakeKtrdrBackend, strategies_dir: Path
) -> None:
    backend = fake_ktrdr_backend
    wait_until(lambda: _both_registered(backend), "both hosts registered")
    urls = {w: backend.workers[w].endpoint_url for w in WORKER_IDS}
    health = [httpx.get(f"{h.url}/health").json() for h in hosts]

    slow_text = strategy_text(
        strategies_dir, **{"epochs: 10": "epochs: 200", "batch_size: 64": "batch_size: 8"}
    )
    slow = [_dispatch(backend, slow_text) for _ in WORKER_IDS]
    slow_ids = [s["operation_id"] for s in slow]
    for operation_id in slow_ids:
        wait_until(
            lambda op=operation_id: _operation(backend, op)["progress"]["steps_completed"] >= 1,
            f"{operation_id} ran an epoch",
        )
    busy = httpx.post(f"{backend.url}/fake/health-checks").json()
    cancelled = [httpx.delete(f"{backend.url}/api/v1/operations/{op}/cancel") for op in slow_ids]
    for operation_id in slow_ids:
        wait_until(
            lambda op=operation_id: _operation(backend, op)["status"] == "cancelled",
            f"{operation_id} cancelled",
        )
    idle = httpx.post(f"{backend.url}/fake/health-checks").json()
    quick = _dispatch(backend, strategy_text(strategies_dir, **{"epochs: 10": "epochs: 2"}))
    wait_until(
        lambda: _operation(backend, quick["operation_id"])["status"] == "completed",
        "the quick training completed",
        timeout=180.0,
    )
    finished = _operation(backend, quick["operation_id"])

    assert urls == {w: h.url for w, h in zip(WORKER_IDS, hosts, strict=True)}
    for answer in health:
        assert problems_with(answer, ERA_C_HEALTH_READS) == []
        assert answer["worker_status"] == "idle"
    # the backend only dispatches to available workers: each host got one training
    assert {s["worker_id"] for s in slow} == set(WORKER_IDS)
    assert all(body["task_id"] for body in backend.dispatched_bodies)
    assert {w["worker_id"]: w["status"] for w in busy} == {w: "busy" for w in WORKER_IDS}
    assert {w["current_operation_id"] for w in busy} == set(slow_ids)
    assert [c.status_code for c in cancelled] == [200, 200]
    assert {w["worker_id"]: w["status"] for w in idle} == {w: "available" for w in WORKER_IDS}
    assert backend.refresh_errors == []
    assert problems_with(finished["result_summary"], ERA_C_RESULT_SUMMARY_READS) == []
    assert Path(finished["result_summary"]["artifacts"]["model_path"], "model.pt").is_file()
    assert [e["epoch"] for e in finished["metrics"]["epochs"]] == [1, 2]

    # a backend restart forgets every worker: both notice and register again
    httpx.post(f"{backend.url}/fake/restart")
    wait_until(lambda: _both_registered(backend), "both hosts registered after the restart")
    # a shutdown notice: registrations are refused (503) until the backend is back
    httpx.post(f"{backend.url}/fake/shutdown")
    backend.workers.clear()
    time.sleep(3 * CHECK_SECONDS)
    refused_meanwhile = not backend.workers
    httpx.post(f"{backend.url}/fake/restart")
    wait_until(lambda: _both_registered(backend), "both hosts registered after the shutdown")
    assert refused_meanwhile
    assert all(backend.workers[w].endpoint_url == urls[w] for w in WORKER_IDS)


def test_worker_start_answers_the_task_id_and_a_busy_host_answers_503(
    hosts: list[HostServiceProcess], strategies_dir: Path
) -> None:
    host = hosts[0]
    slow_text = strategy_text(
        strategies_dir, **{"epochs: 10": "epochs: 200", "batch_size: 64": "batch_size: 8"}
    )
    body = era_c_start_body("op_training_20251112_093000_ab12cd34", slow_text)
    body |= {"start_date": "2023-01-01", "end_date": "2023-12-31"}

    started = httpx.post(f"{host.url}/training/start", json=body, timeout=30.0)
    again = httpx.post(f"{host.url}/training/start", json=body, timeout=30.0)
    other = httpx.post(
        f"{host.url}/training/start", json={**body, "task_id": "op_training_other"}, timeout=30.0
    )
    wait_until(
        lambda: httpx.get(f"{host.url}/health").json()["worker_status"] == "busy", "host busy"
    )
    health = httpx.get(f"{host.url}/health").json()
    operation = httpx.get(f"{host.url}/api/v1/operations/{body['task_id']}").json()["data"]
    httpx.delete(f"{host.url}/api/v1/operations/{body['task_id']}/cancel")

    assert started.status_code == 200, started.text
    assert problems_with(started.json(), ERA_C_START_READS) == []
    assert started.json()["operation_id"] == body["task_id"]
    assert again.json()["operation_id"] == body["task_id"]
    assert other.status_code == 503
    assert other.headers["retry-after"] == "5"
    assert health["current_operation"] == body["task_id"]
    assert problems_with(operation, ERA_C_OPERATION_READS) == []
    assert operation["status"] in ERA_C_OPERATION_STATUSES
