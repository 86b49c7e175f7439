"""Submitting, validating, queueing, stopping and deleting, without running workers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from training_engine.errors import (
    DataFileNotFoundError,
    DeviceUnavailableError,
    StrategyConfigError,
)
from training_sessions.errors import (
    InvalidRequestError,
    QueueFullError,
    SessionConflictError,
    SessionNotFoundError,
    ShuttingDownError,
)
from training_sessions.observer import NullObserver
from training_sessions.service import SessionService
from training_sessions.types import TrainingRequest

from tests.fixtures.databases import on_both_databases
from tests.fixtures.postgres import PostgresServer
from tests.sessions.conftest import SHORT_RUN, request


def test_submit_queues_a_session_with_generated_id(paused_service: SessionService) -> None:
    view, created = paused_service.submit(request(SHORT_RUN))

    assert created is True
    assert len(view.training_id) == 32
    assert view.status == "queued"
    assert view.progress.total_epochs == 2
    assert view.device == "cpu"
    assert view.created_at.tzinfo is not None
    assert paused_service.get(view.training_id).status == "queued"
    assert paused_service.counts() == {"running": 0, "queued": 1}


@on_both_databases
def test_submit_same_id_and_request_returns_existing_session(
    paused_service: SessionService,
) -> None:
    first, created_first = paused_service.submit(request(SHORT_RUN), training_id="run-1")
    again, created_again = paused_service.submit(request(SHORT_RUN), training_id="run-1")

    assert (created_first, created_again) == (True, False)
    assert again.training_id == first.training_id == "run-1"
    assert again.created_at == first.created_at
    assert paused_service.counts()["queued"] == 1


@on_both_databases
def test_submit_same_id_with_other_request_conflicts(paused_service: SessionService) -> None:
    paused_service.submit(request(SHORT_RUN), training_id="run-1")

    with pytest.raises(SessionConflictError, match="run-1"):
        paused_service.submit(request({"epochs": 3}), training_id="run-1")


def test_submit_beyond_queue_limit_raises_queue_full(paused_service: SessionService) -> None:
    for _ in range(3):
        paused_service.submit(request(SHORT_RUN))

    with pytest.raises(QueueFullError, match="max_queue_size 3"):
        paused_service.submit(request(SHORT_RUN))


@pytest.mark.parametrize("name", ["../momentum_mlp", "/etc/passwd", "a/b", "..", ".hidden"])
def test_submit_unsafe_strategy_name_is_rejected(paused_service: SessionService, name: str) -> None:
    with pytest.raises(InvalidRequestError, match="invalid strategy name"):
        paused_service.submit(request(SHORT_RUN, strategy=name))


def test_submit_unknown_strategy_names_it_and_lists_available(
    paused_service: SessionService,
) -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown strategy 'nope'.*momentum_mlp"):
        paused_service.submit(request(SHORT_RUN, strategy="nope"))


def test_submit_bad_override_names_the_key(paused_service: SessionService) -> None:
    with pytest.raises(StrategyConfigError, match="epochs"):
        paused_service.submit(request({"epochs": 0}))


def test_submit_bad_inline_strategy_names_the_key(paused_service: SessionService) -> None:
    with pytest.raises(StrategyConfigError, match="indicators"):
        paused_service.submit(request(strategy={"name": "x", "indicators": "rsi"}))


def test_submit_unavailable_device_is_rejected(paused_service: SessionService) -> None:
    with pytest.raises(DeviceUnavailableError, match="cuda:99"):
        paused_service.submit(request({"device": "cuda:99"}))


def test_submit_missing_data_file_names_the_path(
    paused_service: SessionService, sample_data_dir: Path
) -> None:
    with pytest.raises(DataFileNotFoundError, match=str(sample_data_dir / "ZZZZ_1h.csv")):
        paused_service.submit(request(SHORT_RUN, symbols=("ZZZZ",)))


def test_submit_bad_date_is_rejected(paused_service: SessionService) -> None:
    with pytest.raises(InvalidRequestError, match="start_date"):
        paused_service.submit(request(SHORT_RUN, start_date="yesterday"))


def test_submit_unsafe_training_id_is_rejected(paused_service: SessionService) -> None:
    with pytest.raises(InvalidRequestError, match="training_id"):
        paused_service.submit(request(SHORT_RUN), training_id="../../etc/x")


def test_rejected_submit_leaves_no_session(paused_service: SessionService) -> None:
    with pytest.raises(InvalidRequestError):
        paused_service.submit(request(SHORT_RUN, strategy="nope"), training_id="bad")

    with pytest.raises(SessionNotFoundError):
        paused_service.get("bad")


def test_stop_queued_session_cancels_it_at_once_and_is_idempotent(
    paused_service: SessionService,
) -> None:
    view, _ = paused_service.submit(request(SHORT_RUN))

    stopped = paused_service.stop(view.training_id)
    again = paused_service.stop(view.training_id)

    assert stopped.status == again.status == "cancelled"
    assert stopped.finished_at is not None
    assert again.finished_at == stopped.finished_at
    assert paused_service.counts() == {"running": 0, "queued": 0}


def test_unknown_id_raises_not_found_everywhere(paused_service: SessionService) -> None:
    for call in (
        paused_service.get,
        paused_service.stop,
        paused_service.performance,
        paused_service.delete,
    ):
        with pytest.raises(SessionNotFoundError, match="ghost"):
            call("ghost")


@on_both_databases
def test_delete_queued_session_conflicts_then_works_once_stopped(
    paused_service: SessionService,
) -> None:
    view, _ = paused_service.submit(request(SHORT_RUN))
    with pytest.raises(SessionConflictError, match="queued"):
        paused_service.delete(view.training_id)

    paused_service.stop(view.training_id)
    paused_service.delete(view.training_id)

    with pytest.raises(SessionNotFoundError):
        paused_service.get(view.training_id)


@on_both_databases
def test_list_is_newest_first_filtered_and_paginated(paused_service: SessionService) -> None:
    ids = [paused_service.submit(request(SHORT_RUN))[0].training_id for _ in range(3)]
    paused_service.stop(ids[0])

    everything, total = paused_service.list()
    queued, queued_total = paused_service.list(status="queued")
    page, page_total = paused_service.list(limit=1, offset=1)

    assert [v.training_id for v in everything] == ids[::-1]
    assert total == 3
    assert [v.training_id for v in queued] == [ids[2], ids[1]]
    assert queued_total == 2
    assert [v.training_id for v in page] == [ids[1]]
    assert page_total == 3


def test_observer_sees_status_changes_and_queue_length(
    make_service: Callable[..., SessionService],
) -> None:
    class Recorder(NullObserver):
        def __init__(self) -> None:
            self.statuses: list[tuple[str | None, str]] = []
            self.lengths: list[int] = []

        def on_status(self, training_id: str, old: str | None, new: str) -> None:
            self.statuses.append((old, new))

        def on_queue_length(self, length: int) -> None:
            self.lengths.append(length)

    recorder = Recorder()
    service = make_service(observer=recorder, max_concurrent_jobs=0)
    view, _ = service.submit(request(SHORT_RUN))
    service.stop(view.training_id)

    assert recorder.statuses == [(None, "queued"), ("queued", "cancelled")]
    assert recorder.lengths[-2:] == [1, 0]


@on_both_databases
def test_shutdown_refuses_new_sessions_and_interrupts_queued(
    paused_service: SessionService,
) -> None:
    view, _ = paused_service.submit(request(SHORT_RUN))

    paused_service.shutdown(grace_seconds=1.0)

    assert paused_service.get(view.training_id).status == "interrupted"
    with pytest.raises(ShuttingDownError):
        paused_service.submit(TrainingRequest())
    reopened = SessionService(paused_service.settings)
    reopened.start()
    try:
        # Queued at shutdown, queued again after start: it never ran, so no resume is counted.
        resumed = reopened.get(view.training_id)
        assert resumed.status == "queued"
        assert resumed.resume_count == 0
    finally:
        reopened.shutdown(grace_seconds=1.0)


@pytest.mark.postgres
def test_database_reachable_follows_the_database_server_down_and_up_again(
    make_service: Callable[..., SessionService], postgres_server: PostgresServer
) -> None:
    service = make_service(database_url=postgres_server.url, max_concurrent_jobs=0)

    up = service.database_reachable()
    postgres_server.stop()
    try:
        down = service.database_reachable()
    finally:
        postgres_server.start()
    back = service.database_reachable()

    assert (up, down, back) == (True, False, True)
