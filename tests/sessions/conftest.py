"""Fixtures for the session runtime tests: real SQLite files, real worker processes.

``database_url`` (tests/fixtures/databases.py) is the one switch: SQLite, and PostgreSQL
too for the tests marked ``on_both_databases``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from training_engine.artifacts import WEIGHTS_FILE
from training_sessions.observer import SessionObserver
from training_sessions.runners import SessionRunner
from training_sessions.service import SessionService
from training_sessions.types import RuntimeSettings, TrainingRequest

# Long enough to stop or kill mid-run, short enough to finish in seconds.
LONG_RUN = {"epochs": 400, "batch_size": 16, "early_stopping": {"enabled": False}}
SHORT_RUN = {"epochs": 2}
RESUMABLE_RUN = {"epochs": 3, "batch_size": 32, "early_stopping": {"enabled": False}}
FINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
def runtime_settings(
    tmp_path: Path, database_url: str, sample_data_dir: Path, strategies_dir: Path
) -> RuntimeSettings:
    return RuntimeSettings(
        database_url=database_url,
        data_dir=sample_data_dir,
        models_dir=tmp_path / "models",
        strategies_dir=strategies_dir,
        checkpoints_dir=tmp_path / "checkpoints",
        default_strategy="momentum_mlp",
        default_device="cpu",
        max_concurrent_jobs=1,
        max_queue_size=4,
        stop_grace_seconds=30.0,
    )


@pytest.fixture
def make_service(
    runtime_settings: RuntimeSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., SessionService]]:
    """Build and start services on the test's database; all are shut down at the end.

    Keyword arguments replace fields of the runtime settings; ``observer=`` and ``runner=``
    are passed on.
    """
    # Workers inherit the environment: one thread each on this shared machine.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    services: list[SessionService] = []

    def make(
        observer: SessionObserver | None = None,
        runner: SessionRunner | None = None,
        **overrides: Any,
    ) -> SessionService:
        service = SessionService(
            dataclasses.replace(runtime_settings, **overrides), observer=observer, runner=runner
        )
        service.start()
        services.append(service)
        return service

    yield make
    for service in services:
        service.shutdown(grace_seconds=5.0)


@pytest.fixture
def service(make_service: Callable[..., SessionService]) -> SessionService:
    """A started service running one session at a time."""
    return make_service()


@pytest.fixture
def paused_service(make_service: Callable[..., SessionService]) -> SessionService:
    """A service with no worker slots: sessions only queue (no processes needed)."""
    return make_service(max_concurrent_jobs=0, max_queue_size=3)


def request(config: dict[str, Any] | None = None, **fields: Any) -> TrainingRequest:
    """A request for the default strategy with training overrides."""
    return TrainingRequest(config=dict(config or {}), **fields)


def model_weights(model_path: str | None) -> dict[str, torch.Tensor]:
    """The weights a completed session saved."""
    assert model_path is not None
    return load_file(str(Path(model_path) / WEIGHTS_FILE))


def train_uninterrupted(
    root: Path, data_dir: Path, strategies_dir: Path, config: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """The weights of ``config`` trained start to end by one local worker, under ``root``."""
    settings = RuntimeSettings(
        database_url=f"sqlite:///{root / 'sessions.db'}",
        data_dir=data_dir,
        models_dir=root / "models",
        strategies_dir=strategies_dir,
        checkpoints_dir=root / "checkpoints",
        default_device="cpu",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        service = SessionService(settings)
        service.start()
        try:
            view, _ = service.submit(request(config))
            done = service.wait_for(view.training_id, FINAL, 600)
        finally:
            service.shutdown(grace_seconds=5.0)
    assert done.status == "completed", done.error
    return model_weights(done.model_path)
