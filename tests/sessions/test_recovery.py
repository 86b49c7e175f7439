"""Restart recovery: a session interrupted by shutdown or kill -9 resumes to the same model."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from sqlalchemy.exc import SQLAlchemyError
from training_sessions.requests import checkpoint_path
from training_sessions.service import SessionService
from training_sessions.session_job import load_stored_job
from training_sessions.store import SessionRow, SessionStore, utcnow
from training_sessions.types import RuntimeSettings, SessionStatus

from tests.fixtures.databases import on_both_databases
from tests.fixtures.waiting import wait_until
from tests.fixtures.weights import assert_same_weights
from tests.sessions.conftest import FINAL, RESUMABLE_RUN, request, train_uninterrupted
from tests.sessions.conftest import model_weights as _weights

pytestmark = pytest.mark.slow

# The service as its own process: start a service, submit one session, serve until killed.
SERVICE = """
import json, sys, time
from pathlib import Path
from training_engine.ceilings import Ceilings
from training_sessions.service import SessionService
from training_sessions.types import RuntimeSettings, TrainingRequest

cfg = json.loads(sys.argv[1])
paths = ("data_dir", "models_dir", "strategies_dir", "checkpoints_dir")
values = {k: Path(v) if k in paths else v for k, v in cfg["settings"].items()}
settings = RuntimeSettings(**{**values, "ceilings": Ceilings(**values["ceilings"])})
service = SessionService(settings)
service.start()
service.submit(TrainingRequest.from_dict(cfg["request"]), training_id=cfg["training_id"])
while True:
    time.sleep(1)
"""


def _wait_for_file(path: Path, timeout: float = 180.0) -> None:
    wait_until(path.is_file, timeout, f"{path} written")


def _wait_for_first_epoch_row(database_url: str, training_id: str, timeout: float = 60.0) -> None:
    """Until the service has stored the first epoch (it writes it just after the checkpoint)."""
    store = SessionStore(database_url)

    def stored() -> bool:
        with contextlib.suppress(SQLAlchemyError):  # tables not created yet
            return bool(store.epochs(training_id))
        return False

    try:
        wait_until(stored, timeout, "the first epoch stored", interval=0.02)
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def uninterrupted_weights(
    tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path, strategies_dir: Path
) -> Iterator[dict[str, torch.Tensor]]:
    """The weights of the resumable run trained start to end in one worker."""
    root = tmp_path_factory.mktemp("reference")
    yield train_uninterrupted(root, sample_data_dir, strategies_dir, RESUMABLE_RUN)


def test_shutdown_interrupts_running_session_and_start_resumes_it(
    runtime_settings: RuntimeSettings,
    make_service: Callable[..., SessionService],
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    first = make_service()
    first.submit(request(RESUMABLE_RUN), training_id="resume-me")
    _wait_for_file(checkpoint_path(runtime_settings, "resume-me"))

    first.shutdown(grace_seconds=60.0)
    interrupted = first.get("resume-me")
    epochs_before = first.performance("resume-me").history
    second = make_service()
    done = second.wait_for("resume-me", FINAL, 300)

    assert interrupted.status == "interrupted"
    assert interrupted.checkpoint_path is not None
    assert interrupted.progress.percent < 100.0
    assert interrupted.attempt == 1
    assert done.status == "completed", done.error
    assert done.resume_count == 1
    assert done.attempt == 2
    history = second.performance("resume-me").history
    assert [row["epoch"] for row in history] == [1, 2, 3]
    # Resumed, not retrained: the epochs done before the interruption keep their timings.
    assert epochs_before and history[: len(epochs_before)] == epochs_before
    assert_same_weights(_weights(done.model_path), uninterrupted_weights)


def _kill_service_after_first_epoch(
    settings: RuntimeSettings, training_id: str, mid_run: Callable[[], None] = lambda: None
) -> None:
    """Run the service in its own process, call ``mid_run`` once it has checkpointed, kill -9."""
    config = {
        "settings": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in dataclasses.asdict(settings).items()
        },
        "request": request(RESUMABLE_RUN).to_dict(),
        "training_id": training_id,
    }
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE, json.dumps(config)],
        start_new_session=True,  # its own process group: the service and its worker
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        _wait_for_file(checkpoint_path(settings, training_id))
        _wait_for_first_epoch_row(settings.database_url, training_id)
        mid_run()
    finally:
        os.killpg(service.pid, signal.SIGKILL)  # kill -9 of the service and its worker
        service.wait()


@on_both_databases
def test_killed_service_session_resumes_on_next_start_with_same_weights(
    runtime_settings: RuntimeSettings,
    make_service: Callable[..., SessionService],
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    _kill_service_after_first_epoch(runtime_settings, "k9")
    store = SessionStore(runtime_settings.database_url)
    killed = store.get("k9")
    epochs_before = store.epochs("k9")
    store.dispose()

    service = make_service()
    done = service.wait_for("k9", FINAL, 300)

    assert killed is not None and killed.status == "running"
    assert killed.attempt == 1
    assert done.status == "completed", done.error
    assert done.resume_count == 1
    assert done.attempt == 2  # recovered after the kill -9: a new attempt
    assert done.progress.percent == 100.0
    assert killed.percent <= done.progress.percent
    history = service.performance("k9").history
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert epochs_before and history[: len(epochs_before)] == epochs_before
    assert_same_weights(_weights(done.model_path), uninterrupted_weights)


@pytest.fixture
def own_strategies(tmp_path: Path, strategies_dir: Path) -> Path:
    """A copy of the shipped strategies that a test may edit or delete."""
    return Path(shutil.copytree(strategies_dir, tmp_path / "strategies"))


def _edit_strategy(path: Path) -> None:
    """A different network and learning rate: resolved again, the checkpoint would not fit."""
    text = path.read_text()
    assert "hidden_layers: [32, 16]" in text and "learning_rate: 0.003" in text
    path.write_text(
        text.replace("hidden_layers: [32, 16]", "hidden_layers: [8]").replace(
            "learning_rate: 0.003", "learning_rate: 0.05"
        )
    )


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_strategy_file_changed_mid_run_then_kill_9_resumes_what_was_submitted(
    runtime_settings: RuntimeSettings,
    make_service: Callable[..., SessionService],
    uninterrupted_weights: dict[str, torch.Tensor],
    own_strategies: Path,
    change: str,
) -> None:
    settings = dataclasses.replace(runtime_settings, strategies_dir=own_strategies)
    strategy_file = own_strategies / "momentum_mlp.yaml"

    def change_strategy_file() -> None:
        if change == "edit":
            _edit_strategy(strategy_file)
        else:
            strategy_file.unlink()

    _kill_service_after_first_epoch(settings, "changed", change_strategy_file)
    service = make_service(strategies_dir=own_strategies)
    done = service.wait_for("changed", FINAL, 300)

    assert done.status == "completed", done.error
    assert done.resume_count == 1
    assert [row["epoch"] for row in service.performance("changed").history] == [1, 2, 3]
    assert_same_weights(_weights(done.model_path), uninterrupted_weights)


def test_queued_session_trains_what_was_submitted_after_its_file_changes(
    make_service: Callable[..., SessionService],
    uninterrupted_weights: dict[str, torch.Tensor],
    own_strategies: Path,
) -> None:
    waiting = make_service(strategies_dir=own_strategies, max_concurrent_jobs=0)
    view, _ = waiting.submit(request(RESUMABLE_RUN))
    _edit_strategy(own_strategies / "momentum_mlp.yaml")
    waiting.shutdown(grace_seconds=5.0)

    service = make_service(strategies_dir=own_strategies)
    done = service.wait_for(view.training_id, FINAL, 300)

    assert done.status == "completed", done.error
    assert done.resume_count == 0
    assert_same_weights(_weights(done.model_path), uninterrupted_weights)


@on_both_databases
def test_session_stored_before_jobs_were_stored_is_resolved_once_at_launch(
    runtime_settings: RuntimeSettings,
    make_service: Callable[..., SessionService],
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    store = SessionStore(runtime_settings.database_url)
    store.migrate("0001")  # the schema before the job column
    sessions = SessionRow.__table__
    with store.engine.begin() as connection:
        # Only the columns of revision 0001: the row an older runtime wrote.
        connection.execute(
            sessions.insert().values(
                id="old",
                request=request(RESUMABLE_RUN).to_dict(),
                fingerprint="f",
                status="queued",
                created_at=utcnow(),
            )
        )
    store.dispose()

    service = make_service()
    done = service.wait_for("old", FINAL, 300)
    reopened = SessionStore(runtime_settings.database_url)
    row = reopened.get("old")
    reopened.dispose()

    assert done.status == "completed", done.error
    assert done.attempt == 1
    assert row is not None and row.job is not None
    assert load_stored_job(row.job).strategy.training.epochs == RESUMABLE_RUN["epochs"]
    assert_same_weights(_weights(done.model_path), uninterrupted_weights)


def test_recovery_leaves_interrupted_sessions_alone_when_resume_is_off(
    runtime_settings: RuntimeSettings,
    make_service: Callable[..., SessionService],
) -> None:
    first = make_service(max_concurrent_jobs=0)
    view, _ = first.submit(request(RESUMABLE_RUN))
    store = SessionStore(runtime_settings.database_url)
    # As a kill -9 leaves it: running in the database, no process anywhere.
    assert store.move(view.training_id, SessionStatus.QUEUED, SessionStatus.RUNNING)
    store.dispose()

    second = make_service(resume_interrupted=False)

    assert second.get(view.training_id).status == "interrupted"
    assert second.counts() == {"running": 0, "queued": 0}
    assert second.stop(view.training_id).status == "cancelled"
