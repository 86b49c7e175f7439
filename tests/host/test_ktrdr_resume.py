"""KTRDR's ``POST /training/resume`` (its training worker's route) on real host servers.

KTRDR's backend sends ``{"operation_id"}`` to any training worker to continue a cancelled or
failed operation from its checkpoint; the worker answers 200 with ``resumed_from_epoch``,
404 without a checkpoint, 422 for one it cannot read. These tests drive the host the way
that worker is driven: start through ``/training/start``, cancel through the operations API,
resume, and compare the weights with a run never stopped. The restart after kill -9 runs
a host process; the other tests an app served by uvicorn in the test's process (its
trainings run in real worker processes all the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from training_engine.checkpoint import load_checkpoint

from tests.conftest import find_free_port
from tests.fixtures.servers import run_host_service, serve_app
from tests.fixtures.waiting import wait_until
from tests.host.conftest import AppFactory, host_settings
from tests.host.ktrdr_bodies import era_b_host_operation_id, era_b_start_body, era_c_start_body
from tests.host.test_ktrdr_auth import BEARER, KTRDR_ADDRESS, OTHER_ADDRESS, TOKEN, client_from
from tests.host.test_ktrdr_era_b import strategy_text

pytestmark = pytest.mark.slow

EPOCHS = 4
RUN_TIMEOUT = 300.0
# Two runs (and a host process or two) per test on a shared two-core machine.
RESUME_TEST_TIMEOUT = 900
# The host process imports torch and pandas before it answers: over 60 s on a loaded machine.
HOST_STARTUP_TIMEOUT = 240.0


def resumable_text(strategies_dir: Path, epochs: int = EPOCHS) -> str:
    """The shipped strategy, smaller batches (epochs long enough to cancel between two) and
    no early stopping (every run trains every epoch)."""
    return strategy_text(
        strategies_dir,
        **{
            "epochs: 10": f"epochs: {epochs}",
            "batch_size: 64": "batch_size: 32",
            "enabled: true": "enabled: false",
        },
    )


def ktrdr_start(strategies_dir: Path, task_id: str, epochs: int = EPOCHS) -> dict[str, Any]:
    """Era C's worker start, over the whole sample data (as era B's dates)."""
    body = era_c_start_body(task_id, resumable_text(strategies_dir, epochs))
    return {**body, "start_date": "2020-01-01", "end_date": "2025-10-26"}


def operation(client: httpx.Client, operation_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/operations/{operation_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def wait_for_operation(
    client: httpx.Client, operation_id: str, status: str, timeout: float = RUN_TIMEOUT
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        data = operation(client, operation_id)
        if data["status"] == "failed" and status != "failed":
            pytest.fail(f"{operation_id} failed: {data['error_message']}")
        return data if data["status"] == status else None

    return wait_until(reached, timeout, f"{operation_id} {status}", 0.1)


def wait_for_epochs(client: httpx.Client, operation_id: str, epochs: int = 1) -> None:
    """Until ``epochs`` epochs are recorded (each checkpointed before it is recorded)."""
    wait_until(
        lambda: len(epochs_recorded(client, operation_id)) >= epochs,
        RUN_TIMEOUT,
        f"{operation_id} finished {epochs} epoch(s)",
        0.05,
    )


def post_when_a_slot_is_free(
    client: httpx.Client, path: str, body: dict[str, Any]
) -> httpx.Response:
    """Sent again while the host answers 503: a stopped run's worker may still be exiting."""

    def sent() -> httpx.Response | None:
        response = client.post(path, json=body)
        return None if response.status_code == 503 else response

    return wait_until(sent, RUN_TIMEOUT, "a free training slot", 0.5)


def epochs_recorded(client: httpx.Client, operation_id: str) -> list[int]:
    answer = client.get(f"/api/v1/operations/{operation_id}/metrics").json()
    return [entry["epoch"] for entry in answer["data"]["metrics"]]


def ktrdr_weights(finished: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights KTRDR loads: ``model.pt`` of the folder the result names."""
    folder = Path(finished["result_summary"]["artifacts"]["model_path"])
    weights: dict[str, torch.Tensor] = torch.load(folder / "model.pt", weights_only=True)
    return weights


def assert_same_weights(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), f"{name} differs"


@pytest.fixture(scope="module")
def uninterrupted_weights(
    tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path, strategies_dir: Path
) -> Iterator[dict[str, torch.Tensor]]:
    """The weights of the resumable run trained start to end by a host of its own."""
    from training_host.main import create_app

    settings = host_settings(
        tmp_path_factory.mktemp("uninterrupted"), sample_data_dir, strategies_dir
    )
    with (
        serve_app(create_app(settings), find_free_port()) as url,
        httpx.Client(base_url=url, timeout=30.0) as client,
    ):
        started = client.post("/training/start", json=ktrdr_start(strategies_dir, "op_whole"))
        assert started.status_code == 200, started.text
        yield ktrdr_weights(wait_for_operation(client, "op_whole", "completed"))


@pytest.mark.timeout(RESUME_TEST_TIMEOUT)
def test_a_cancelled_operation_resumes_to_the_weights_of_a_run_never_stopped(
    start_app: AppFactory,
    strategies_dir: Path,
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    url, _ = start_app()
    with httpx.Client(base_url=url, timeout=30.0) as client:
        started = client.post("/training/start", json=ktrdr_start(strategies_dir, "op_cut"))
        assert started.status_code == 200, started.text
        wait_for_epochs(client, "op_cut")
        client.delete("/api/v1/operations/op_cut/cancel", params={"reason": "user"})
        wait_for_operation(client, "op_cut", "cancelled")
        done_before = epochs_recorded(client, "op_cut")

        # KTRDR's body: its optional task_id, and a key it never sends, are ignored.
        resumed = post_when_a_slot_is_free(
            client,
            "/training/resume",
            {"operation_id": "op_cut", "task_id": "op_cut", "priority": "high"},
        )
        finished = wait_for_operation(client, "op_cut", "completed")
        again = client.post("/training/resume", json={"operation_id": "op_cut"})
        epochs_after = epochs_recorded(client, "op_cut")

    assert 1 <= len(done_before) < EPOCHS, "the cancel must land between the first and last epoch"
    assert resumed.status_code == 200, resumed.text
    assert resumed.json() == {
        "success": True,
        "operation_id": "op_cut",
        "status": "started",
        # KTRDR's 0-based index of the last epoch the checkpoint completed
        "resumed_from_epoch": len(done_before) - 1,
    }
    assert epochs_after == list(range(1, EPOCHS + 1))
    assert_same_weights(ktrdr_weights(finished), uninterrupted_weights)
    assert again.status_code == 409
    assert again.json()["detail"] == "Operation op_cut is already completed"


@pytest.mark.timeout(RESUME_TEST_TIMEOUT)
def test_an_operation_running_when_the_host_was_killed_resumes_after_its_restart(
    tmp_path: Path,
    free_port: int,
    sample_data_dir: Path,
    strategies_dir: Path,
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    # Left interrupted at the restart, as a KTRDR worker leaves it, for KTRDR to resume.
    env = {"TRAINING_HOST_RESUME_INTERRUPTED": "false"}
    with (
        run_host_service(
            tmp_path, free_port, env, sample_data_dir, startup_timeout=HOST_STARTUP_TIMEOUT
        ) as host,
        httpx.Client(base_url=host.url, timeout=30.0) as client,
    ):
        # Era B: the host names the session; KTRDR asks for host_training_{id}.
        body = era_b_start_body(resumable_text(strategies_dir))
        started = client.post("/training/start", json=body)
        assert started.status_code == 200, started.text
        operation_id = era_b_host_operation_id(started.json()["session_id"])
        wait_for_epochs(client, operation_id)

        host.kill()
        host.restart()

        after_restart = operation(client, operation_id)
        checkpoint = load_checkpoint(
            tmp_path / "checkpoints" / f"{started.json()['session_id']}.ckpt"
        )
        resumed = client.post("/training/resume", json={"operation_id": operation_id})
        finished = wait_for_operation(client, operation_id, "completed")
        epochs_after = epochs_recorded(client, operation_id)

    assert after_restart["status"] == "pending"  # interrupted: KTRDR's words have no other
    assert 1 <= checkpoint["epoch"] < EPOCHS
    assert resumed.status_code == 200, resumed.text
    assert resumed.json() == {
        "success": True,
        "operation_id": operation_id,
        "status": "started",
        "resumed_from_epoch": checkpoint["epoch"] - 1,
    }
    assert epochs_after == list(range(1, EPOCHS + 1))
    assert_same_weights(ktrdr_weights(finished), uninterrupted_weights)


def test_resume_answers_as_ktrdrs_worker_when_it_cannot_resume(
    tmp_path: Path, start_app: AppFactory, strategies_dir: Path
) -> None:
    url, _ = start_app(api_token=TOKEN, ktrdr_clients=[KTRDR_ADDRESS], max_concurrent_jobs=1)
    ours = {
        "training_id": "ours",
        "symbol": "AAPL",
        "timeframe": "1h",
        "config": {"epochs": 200, "batch_size": 16},
    }
    with (
        httpx.Client(base_url=url, headers=BEARER, timeout=30.0) as owner,
        client_from(KTRDR_ADDRESS, url) as ktrdr,
        client_from(OTHER_ADDRESS, url) as stranger,
    ):
        # A training of ours (our own door), stopped after an epoch: it has a checkpoint.
        assert owner.post("/trainings/start", json=ours).status_code == 202
        wait_for_epochs(owner, "ours")
        owner.post("/trainings/ours/stop")
        wait_for_operation(owner, "ours", "cancelled")
        ours_done = epochs_recorded(owner, "ours")
        not_ktrdrs = ktrdr.post("/training/resume", json={"operation_id": "ours"})
        no_token = stranger.post("/training/resume", json={"operation_id": "ours"})
        unknown = ktrdr.post("/training/resume", json={"operation_id": "op_unknown"})
        no_operation = ktrdr.post("/training/resume", json={"task_id": "op_unknown"})

        # KTRDR's long training takes the only slot (once the stopped run's worker is gone).
        long_start = post_when_a_slot_is_free(
            ktrdr, "/training/start", ktrdr_start(strategies_dir, "op_long", 200)
        )
        assert long_start.status_code == 200, long_start.text
        wait_for_epochs(ktrdr, "op_long")
        running = ktrdr.post("/training/resume", json={"operation_id": "op_long"})
        host_full = owner.post("/training/resume", json={"operation_id": "ours"})
        # Era B's start queues behind it; cancelled before it ran, it never checkpointed.
        queued_id = ktrdr.post(
            "/training/start", json=era_b_start_body(resumable_text(strategies_dir))
        ).json()["session_id"]
        queued = ktrdr.post("/training/resume", json={"operation_id": queued_id})
        ktrdr.delete(f"/api/v1/operations/{queued_id}/cancel")
        never_checkpointed = ktrdr.post(
            "/training/resume", json={"operation_id": era_b_host_operation_id(queued_id)}
        )

        ktrdr.delete("/api/v1/operations/op_long/cancel")
        wait_for_operation(ktrdr, "op_long", "cancelled")
        checkpoint_file = tmp_path / "checkpoints" / "op_long.ckpt"
        whole = checkpoint_file.read_bytes()
        checkpoint_file.write_bytes(whole[: len(whole) // 2])  # a torn copy
        corrupt = ktrdr.post("/training/resume", json={"operation_id": "op_long"})
        still = operation(ktrdr, "op_long")["status"]

        # Our token may resume a training started through our own door.
        with_token = post_when_a_slot_is_free(owner, "/training/resume", {"operation_id": "ours"})
        owner.post("/trainings/ours/stop")

    assert not_ktrdrs.status_code == 404
    assert not_ktrdrs.json()["detail"] == "No checkpoint found for operation ours"
    assert no_token.status_code == 401
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "No checkpoint found for operation op_unknown"
    assert no_operation.status_code == 422
    assert "operation_id" in no_operation.json()["detail"]
    assert running.status_code == 409
    assert running.json()["detail"] == "Operation op_long is already running"
    assert host_full.status_code == 503
    assert host_full.headers["retry-after"] == "5"
    assert queued.status_code == 409
    assert queued.json()["detail"] == f"Operation {queued_id} is already queued"
    assert never_checkpointed.status_code == 404
    assert never_checkpointed.json()["detail"] == (
        f"No checkpoint found for operation {era_b_host_operation_id(queued_id)}"
    )
    assert corrupt.status_code == 422
    detail = corrupt.json()["detail"]
    assert detail.startswith("Checkpoint corrupted: checkpoint op_long.ckpt is corrupt")
    assert str(tmp_path) not in detail
    assert still == "cancelled"
    assert with_token.status_code == 200, with_token.text
    assert with_token.json()["resumed_from_epoch"] == len(ours_done) - 1 >= 0
