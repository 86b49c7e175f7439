"""Resume: a failed (kill -9, full disk), cancelled or interrupted session continues
from its checkpoint to the weights of a run never stopped."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from training_sessions.errors import (
    CorruptCheckpointError,
    NoCheckpointError,
    NotResumableError,
    SessionNotFoundError,
)
from training_sessions.requests import checkpoint_path
from training_sessions.service import SessionService
from training_sessions.types import TRANSITIONS, RuntimeSettings, SessionStatus

from tests.fixtures.processes import kill_worker
from tests.fixtures.weights import assert_same_weights
from tests.sessions import test_recovery
from tests.sessions.conftest import FINAL, RESUMABLE_RUN, SHORT_RUN, request
from tests.sessions.test_recovery import _wait_for_file, _weights

pytestmark = pytest.mark.slow

# The reference run, trained once per module, as in the recovery tests.
uninterrupted_weights = test_recovery.uninterrupted_weights
FAULTS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "fault_injection"


def test_only_failed_cancelled_and_interrupted_sessions_move_back_to_queued() -> None:
    back_to_queue = {old for old, allowed in TRANSITIONS.items() if SessionStatus.QUEUED in allowed}

    assert back_to_queue == {
        SessionStatus.FAILED,
        SessionStatus.CANCELLED,
        SessionStatus.INTERRUPTED,
    }
    assert TRANSITIONS[SessionStatus.FAILED] == {SessionStatus.QUEUED}
    assert TRANSITIONS[SessionStatus.CANCELLED] == {SessionStatus.QUEUED}
    assert not TRANSITIONS[SessionStatus.COMPLETED]


def test_worker_killed_with_9_fails_and_resume_reaches_the_uninterrupted_weights(
    service: SessionService,
    runtime_settings: RuntimeSettings,
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    service.submit(request(RESUMABLE_RUN), training_id="killed")
    _wait_for_file(checkpoint_path(runtime_settings, "killed"))
    kill_worker(os.getpid())

    failed = service.wait_for("killed", FINAL, 60)
    resumed = service.resume("killed").view
    done = service.wait_for("killed", {"completed", "failed"}, 300)

    assert failed.status == "failed"
    assert failed.error == "worker exited with code -9"
    assert failed.checkpoint_path is not None
    assert failed.attempt == 1
    assert resumed.status == "queued"
    assert resumed.resume_count == 1
    assert resumed.error is None and resumed.finished_at is None
    assert resumed.attempt == 1  # counted when it is launched again
    assert done.status == "completed", done.error
    assert done.attempt == 2
    assert_same_weights(_weights(done.model_path), uninterrupted_weights)


def test_run_failed_on_a_full_disk_resumes_from_its_last_good_checkpoint(
    make_service: Callable[..., SessionService],
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    # The fault is injected when an interpreter starts (sitecustomize): spawned workers.
    service = make_service(worker_start="spawn")
    # The worker's second checkpoint (end of epoch 2) meets a full disk.
    monkeypatch.setenv("PYTHONPATH", f"{FAULTS_DIR}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("FAULT_ENOSPC_ON_CHECKPOINT_WRITE", "2")
    service.submit(request(RESUMABLE_RUN), training_id="disk-full")
    failed = service.wait_for("disk-full", FINAL, 300)
    monkeypatch.delenv("FAULT_ENOSPC_ON_CHECKPOINT_WRITE")  # space freed

    service.resume("disk-full")
    done = service.wait_for("disk-full", {"completed", "failed"}, 300)

    assert failed.status == "failed"
    assert failed.error is not None and "No space left on device" in failed.error
    assert failed.checkpoint_path is not None
    assert done.status == "completed", done.error
    assert done.resume_count == 1
    assert [row["epoch"] for row in service.performance("disk-full").history] == [1, 2, 3]
    assert_same_weights(_weights(done.model_path), uninterrupted_weights)


def test_resume_refuses_queued_unknown_and_checkpointless_sessions(
    paused_service: SessionService,
) -> None:
    view, _ = paused_service.submit(request(SHORT_RUN))

    with pytest.raises(NotResumableError, match="is queued"):
        paused_service.resume(view.training_id)
    with pytest.raises(SessionNotFoundError):
        paused_service.resume("no-such-training")
    paused_service.stop(view.training_id)
    with pytest.raises(NoCheckpointError, match="no checkpoint to resume from"):
        paused_service.resume(view.training_id)
    assert paused_service.get(view.training_id).status == "cancelled"


def test_resume_refuses_a_checkpoint_it_cannot_read_without_naming_its_folder(
    paused_service: SessionService, runtime_settings: RuntimeSettings
) -> None:
    paused_service.submit(request(SHORT_RUN), training_id="torn")
    paused_service.stop("torn")
    checkpoint_path(runtime_settings, "torn").write_bytes(b"half a checkpoint")

    with pytest.raises(CorruptCheckpointError) as refused:
        paused_service.resume("torn")

    assert refused.value.reason.startswith("checkpoint torn.ckpt is corrupt or unreadable")
    assert str(runtime_settings.checkpoints_dir) not in str(refused.value)
    assert paused_service.get("torn").status == "cancelled"
