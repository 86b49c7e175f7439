"""Host-service test helpers: an app under a real uvicorn thread, and polling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from training_host.config import Settings

from tests.conftest import find_free_port
from tests.fixtures.servers import serve_app
from tests.fixtures.waiting import wait_for_training_status, wait_until

# The example body, kept small: the default strategy, one symbol, two epochs.
QUICK_BODY: dict[str, Any] = {"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 2}}
FINAL = {"completed", "failed", "cancelled"}


def host_settings(
    tmp_path: Path, data_dir: Path, strategies_dir: Path, **overrides: Any
) -> Settings:
    """Settings with every writable path under ``tmp_path``."""
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "models_dir": tmp_path / "models",
        "checkpoints_dir": tmp_path / "checkpoints",
        "log_dir": tmp_path / "logs",
        "data_dir": data_dir,
        "strategies_dir": strategies_dir,
        "default_device": "cpu",
        "stop_grace_seconds": 10,
    }
    values.update(overrides)
    return Settings(**values)


AppFactory = Callable[..., tuple[str, Any]]


@pytest.fixture
def start_app(tmp_path: Path, sample_data_dir: Path, strategies_dir: Path) -> Iterator[AppFactory]:
    """Call with Settings overrides; returns (base_url, app) of a uvicorn-served app."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> tuple[str, Any]:
            from training_host.main import create_app

            settings = host_settings(tmp_path, sample_data_dir, strategies_dir, **overrides)
            app = create_app(settings)
            url = stack.enter_context(serve_app(app, find_free_port()))
            return url, app

        yield start


def wait_for_status(
    client: httpx.Client,
    training_id: str,
    statuses: set[str],
    timeout: float = 120.0,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll ``/trainings/{id}/status`` until its status is in ``statuses``; any other final
    status fails at once."""
    return wait_for_training_status(
        client,
        f"/trainings/{training_id}/status",
        statuses,
        timeout,
        give_up_on=FINAL,
        on_poll=on_poll,
    )


def wait_for_progress(
    client: httpx.Client, training_id: str, epochs: int, timeout: float = 120.0
) -> dict[str, Any]:
    """Poll until the training runs and has finished ``epochs`` epochs (so it checkpointed)."""

    def reached() -> dict[str, Any] | None:
        body = wait_for_status(client, training_id, {"running"}, timeout)
        return body if body["progress"]["epoch"] >= epochs else None

    return wait_until(reached, timeout, f"training {training_id} at epoch {epochs}", 0.1)
