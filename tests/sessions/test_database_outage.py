"""PostgreSQL stopped while a training finishes: the supervisor survives, the result is
kept beside the checkpoint, and it is recorded once the database is back (or at the next
start), never trained twice; the queue moves on."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from training_sessions.pending_results import pending_result_file
from training_sessions.service import SessionService
from training_sessions.types import RuntimeSettings

from tests.fixtures.postgres import PostgresServer
from tests.sessions.conftest import FINAL, RESUMABLE_RUN, SHORT_RUN, request

pytestmark = pytest.mark.slow


def _model_dirs(settings: RuntimeSettings) -> list[Path]:
    """Our model directories (the KTRDR copies under models/ktrdr/ are not counted)."""
    return [
        path
        for path in settings.models_dir.glob("*/*")
        if path.is_dir() and path.parent.name != "ktrdr"
    ]


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.1)


def _finish_with_database_down(
    make_service: Callable[..., SessionService],
    runtime_settings: RuntimeSettings,
    server: PostgresServer,
) -> tuple[SessionService, RuntimeSettings, Path]:
    """Submit two sessions on ``server``, stop it while the first runs, wait until it ended.

    Returns the service, its settings and the file its result is kept in.
    """
    settings = dataclasses.replace(runtime_settings, database_url=server.url)
    service = make_service(database_url=server.url)
    service.submit(request(RESUMABLE_RUN), training_id="first")
    service.submit(request(SHORT_RUN), training_id="second")
    service.wait_for("first", {"running"}, 120)
    server.stop()
    kept = pending_result_file(settings.checkpoints_dir, "first")
    _wait_for(kept.is_file, 300, "the result kept beside the checkpoint")
    return service, settings, kept


def test_result_written_once_the_database_is_back_and_the_queue_moves_on(
    postgres_server: PostgresServer,
    runtime_settings: RuntimeSettings,
    make_service: Callable[..., SessionService],
) -> None:
    service, settings, kept = _finish_with_database_down(
        make_service, runtime_settings, postgres_server
    )
    time.sleep(2.0)  # several supervisor rounds against a dead database
    # The session's supervisor survives the outage, keeping the result it could not write.
    supervisor_alive = any(
        thread.name == "supervisor-first" and thread.is_alive() for thread in threading.enumerate()
    )

    postgres_server.start()
    first = service.wait_for("first", FINAL, 120)
    second = service.wait_for("second", FINAL, 300)

    assert supervisor_alive
    assert first.status == "completed", first.error
    assert first.model_path is not None
    assert first.resume_count == 0
    assert not kept.exists()  # recorded: the kept copy is gone
    assert second.status == "completed", second.error
    assert len(_model_dirs(settings)) == 2


def test_result_kept_during_the_outage_is_recorded_at_the_next_start_not_retrained(
    postgres_server: PostgresServer,
    runtime_settings: RuntimeSettings,
    make_service: Callable[..., SessionService],
) -> None:
    service, settings, kept = _finish_with_database_down(
        make_service, runtime_settings, postgres_server
    )
    service.shutdown(grace_seconds=5.0)  # the service stops while the database is down
    models_before = _model_dirs(settings)

    postgres_server.start()
    restarted = make_service(database_url=postgres_server.url)
    first = restarted.get("first")
    second = restarted.wait_for("second", FINAL, 300)

    assert first.status == "completed", first.error
    assert first.resume_count == 0
    assert first.model_path is not None and Path(first.model_path) in models_before
    assert [row["epoch"] for row in restarted.performance("first").history] == [1, 2, 3]
    assert not kept.exists()
    assert second.status == "completed", second.error
    assert len(_model_dirs(settings)) == 2  # one model per training
