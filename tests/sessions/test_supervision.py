"""One supervisor per session: attempts, placement, and no lock held across database I/O."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url
from training_sessions.contract import TrainingStatus
from training_sessions.epoch_metrics import EPOCH_METRICS
from training_sessions.errors import RunnerUnavailableError
from training_sessions.runners import Launch
from training_sessions.runners.local import LocalProcessRunner, LocalRunHandle
from training_sessions.service import SessionService
from training_sessions.store import EpochRow
from training_sessions.types import SessionView

from tests.fixtures.waiting import wait_until
from tests.sessions.conftest import FINAL, LONG_RUN, SHORT_RUN, request

pytestmark = pytest.mark.slow

on_postgres = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


class StaleAttemptRunner(LocalProcessRunner):
    """The real worker, stamped with the attempt before the current one.

    What a run the service gave up on (a worker still exiting, a task on a node
    declared lost) would send; the local runner cannot produce it otherwise.
    """

    def launch(self, launch: Launch) -> LocalRunHandle:
        return super().launch(dataclasses.replace(launch, attempt=launch.attempt - 1))


def test_messages_of_another_attempt_are_ignored(
    make_service: Callable[..., SessionService],
) -> None:
    service = make_service(runner=StaleAttemptRunner())
    view, _ = service.submit(request(SHORT_RUN))

    done = service.wait_for(view.training_id, FINAL, 180)

    # The worker trained to the end, but nothing it said was taken for attempt 1.
    assert done.status == "failed"
    assert done.error == "worker ended the session without reporting a result"
    assert done.attempt == 1
    assert (done.progress.percent, done.progress.total_batches, done.metrics) == (0.0, 0, {})
    assert done.model_path is None
    assert service.performance(view.training_id).history == []
    assert {event.kind for event in service.events(view.training_id)} == {"status"}


def test_status_shows_the_attempt_and_where_it_ran(service: SessionService) -> None:
    view, _ = service.submit(request(SHORT_RUN))
    queued = TrainingStatus.from_view(view, service.settings).model_dump(mode="json")

    done = service.wait_for(view.training_id, FINAL, 180)
    body = TrainingStatus.from_view(done, service.settings).model_dump(mode="json")

    assert (queued["attempt"], queued["node"], queued["node_address"]) == (0, None, None)
    assert done.status == "completed", done.error
    assert body["attempt"] == 1
    assert body["node"] == socket.gethostname()
    assert ipaddress.ip_address(body["node_address"])


def test_the_epoch_table_has_a_column_for_each_epoch_metric() -> None:
    columns = {column.name for column in EpochRow.__table__.columns}

    assert columns - {"id", "session_id", "epoch"} == set(EPOCH_METRICS)
    assert set(EPOCH_METRICS) == {
        "train_loss",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "epoch_seconds",
        "samples_per_second",
    }


@contextmanager
def _connection(database_url: str, *, autocommit: bool) -> Iterator[psycopg.Connection]:
    url = make_url(database_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=autocommit
    ) as connection:
        yield connection


def _writers_waiting_on_a_lock(watcher: psycopg.Connection) -> int:
    row = watcher.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return int(row[0]) if row else 0


@on_postgres
def test_requests_answer_while_a_supervisor_write_waits_on_a_row_lock(
    service: SessionService, database_url: str
) -> None:
    running, _ = service.submit(request(LONG_RUN))
    wait_until(lambda: service.get(running.training_id).progress.total_batches, 120, "progress")

    def answers() -> tuple[dict[str, int], SessionView, SessionView, SessionView]:
        queued, _ = service.submit(request(SHORT_RUN))
        return (
            service.counts(),
            service.get(running.training_id),
            service.stop(running.training_id),
            service.stop(queued.training_id),
        )

    with (
        _connection(database_url, autocommit=False) as locker,
        _connection(database_url, autocommit=True) as watcher,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        # Another client holds the session's row: the supervisor's next write waits for it.
        locker.execute(
            "SELECT id FROM training_sessions WHERE id = %s FOR UPDATE", (running.training_id,)
        )
        wait_until(lambda: _writers_waiting_on_a_lock(watcher), 120, "a supervisor write waiting")
        answered = pool.submit(answers)
        try:
            counts, status, stopping, cancelled = answered.result(timeout=60)
            still_waiting = _writers_waiting_on_a_lock(watcher)
        finally:
            locker.rollback()

    assert still_waiting >= 1  # every answer came while the write was blocked
    assert counts == {"running": 1, "queued": 1}
    assert status.status == stopping.status == "running"
    assert cancelled.status == "cancelled"
    assert service.wait_for(running.training_id, FINAL, 120).status == "cancelled"


class ClusterAwayRunner(LocalProcessRunner):
    """The real worker behind a cluster that does not answer until ``back`` is set, and
    whose first launch after it is back fails as unreachable if ``launch_fails_once``.

    A head that stops and starts cannot be staged without Ray; this is the runner's side
    of it (tests/sessions/test_ray_cluster.py has the real cluster).
    """

    def __init__(self, *, launch_fails_once: bool = False) -> None:
        super().__init__()
        self.back = threading.Event()
        self.checks = 0
        self.launches = 0
        self._launch_fails = launch_fails_once

    def check_available(self) -> None:
        self.checks += 1
        if not self.back.is_set():
            raise RunnerUnavailableError("the Ray cluster at 10.0.0.9:6379 is unreachable")

    def launch(self, launch: Launch) -> LocalRunHandle:
        self.launches += 1
        if self._launch_fails:
            self._launch_fails = False
            raise RunnerUnavailableError("could not list the cluster's actors: head gone")
        return super().launch(launch)


@pytest.fixture
def quick_runner_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("training_sessions.supervisor.RUNNER_RETRY_SECONDS", 0.2)


@pytest.mark.usefixtures("quick_runner_retries")
def test_a_start_waits_in_the_queue_while_the_cluster_is_away_and_runs_when_it_is_back(
    make_service: Callable[..., SessionService],
) -> None:
    runner = ClusterAwayRunner()
    service = make_service(runner=runner)
    view, _ = service.submit(request(SHORT_RUN))
    wait_until(lambda: runner.checks >= 3, 30, "the runner checked a few times")
    waiting = service.get(view.training_id)
    said = [e.data["message"] for e in service.events(view.training_id) if e.kind == "log"]

    runner.back.set()
    done = service.wait_for(view.training_id, FINAL, 180)

    assert (waiting.status, waiting.attempt, waiting.error) == ("queued", 0, None)
    assert said == ["waiting in the queue: the Ray cluster at 10.0.0.9:6379 is unreachable"]
    assert done.status == "completed", done.error
    assert (done.attempt, done.resume_count, runner.launches) == (1, 0, 1)


def test_a_start_stopped_while_the_cluster_is_away_is_cancelled_unlaunched_at_once(
    make_service: Callable[..., SessionService], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The next check of the cluster would be minutes away: the stop itself ends the wait.
    monkeypatch.setattr("training_sessions.supervisor.RUNNER_RETRY_SECONDS", 600)
    runner = ClusterAwayRunner()
    service = make_service(runner=runner)
    view, _ = service.submit(request(SHORT_RUN))
    wait_until(lambda: runner.checks >= 1, 30, "the runner checked")

    service.stop(view.training_id)
    done = service.wait_for(view.training_id, FINAL, 30)

    assert done.status == "cancelled"
    assert (done.attempt, runner.launches) == (0, 0)


@pytest.mark.usefixtures("quick_runner_retries")
def test_a_launch_that_finds_the_cluster_gone_is_queued_again_not_failed(
    make_service: Callable[..., SessionService],
) -> None:
    runner = ClusterAwayRunner(launch_fails_once=True)
    runner.back.set()
    service = make_service(runner=runner)
    view, _ = service.submit(request(SHORT_RUN))

    done = service.wait_for(view.training_id, FINAL, 180)
    statuses = [e.data["status"] for e in service.events(view.training_id) if e.kind == "status"]

    assert done.status == "completed", done.error
    assert (done.attempt, done.resume_count, runner.launches) == (2, 1, 2)
    assert statuses == ["queued", "running", "interrupted", "queued", "running", "completed"]
