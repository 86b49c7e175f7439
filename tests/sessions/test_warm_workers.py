"""Warm workers: one process runs session after session, with its threads and its data kept.

What is checked is what the real worker processes say in each session's own log file:
the pid and the count of sessions that process has run, torch's own thread counts, and
whether the prepared data came from the worker's cache.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError
from training_engine.sample_data import write_sample_data
from training_sessions.runners.local import session_threads
from training_sessions.service import SessionService
from training_sessions.store import SessionStore
from training_sessions.types import RuntimeSettings

from tests.fixtures.processes import running, worker_pids
from tests.fixtures.waiting import wait_until
from tests.fixtures.weights import assert_same_weights
from tests.sessions.conftest import (
    FINAL,
    LONG_RUN,
    RESUMABLE_RUN,
    SHORT_RUN,
    model_weights,
    request,
)
from tests.sessions.test_recovery import service_command

pytestmark = pytest.mark.slow

STARTED = re.compile(
    r"worker started \(pid (?P<pid>\d+), attempt (?P<attempt>\d+), "
    r"session (?P<session>\d+) of this worker, "
    r"torch threads (?P<intra>\d+) intra-op / (?P<inter>\d+) inter-op"
)
DATA = re.compile(r"data: \S+ \S+, (?P<train>\d+) train / ")
FEATURES = re.compile(r"data: .* samples, (?P<features>\d+) features")
DIVERGING = {"epochs": 3, "learning_rate": 1e20, "early_stopping": {"enabled": False}}


def _started(log: str) -> list[dict[str, int]]:
    """Each 'worker started' line of a session's log, as numbers."""
    return [
        {key: int(value) for key, value in match.groupdict().items()}
        for match in STARTED.finditer(log)
    ]


def _completed(service: SessionService, training_id: str) -> str:
    """Wait for the session to complete; its log file."""
    done = service.wait_for(training_id, FINAL, 240)
    assert done.status == "completed", done.error
    return service.log(training_id)


@pytest.fixture
def logged_service(
    make_service: Callable[..., SessionService], tmp_path: Path
) -> Callable[..., SessionService]:
    """Services that write each session's log file."""

    def make(**overrides: object) -> SessionService:
        return make_service(log_dir=tmp_path / "logs", **overrides)

    return make


def test_a_warm_worker_runs_the_next_sessions_reusing_its_data_for_the_same_inputs_only(
    logged_service: Callable[..., SessionService],
) -> None:
    service = logged_service()
    first, _ = service.submit(request(SHORT_RUN))
    second, _ = service.submit(request({**SHORT_RUN, "learning_rate": 0.01}))
    other_features = {
        "name": "other_features",
        "training_data": {"symbols": ["AAPL"], "timeframes": ["1h"]},
        "indicators": [{"name": "roc", "period": 10}],
        "model": {"training": {"epochs": 1}},
    }
    third, _ = service.submit(request(strategy=other_features))

    first_log = _completed(service, first.training_id)
    second_log = _completed(service, second.training_id)
    third_log = _completed(service, third.training_id)

    starts = [_started(log)[0] for log in (first_log, second_log, third_log)]
    assert len({start["pid"] for start in starts}) == 1
    assert [start["session"] for start in starts] == [1, 2, 3]
    assert "prepared data cache miss" in first_log
    assert "prepared data cache hit" in second_log
    # Another feature set over the same file: prepared for itself, not served the first's.
    assert "prepared data cache miss" in third_log
    first_data, third_data = FEATURES.search(first_log), FEATURES.search(third_log)
    assert first_data is not None and third_data is not None
    assert int(third_data["features"]) == 1  # roc only
    assert int(first_data["features"]) > 1
    # Each session's lines go to its own file only.
    assert second.training_id not in first_log
    assert first.training_id not in second_log
    # The hit is in the session's event log too, for clients of the event stream.
    messages = [
        event.data["message"] for event in service.events(second.training_id) if event.kind == "log"
    ]
    assert any(message.startswith("prepared data cache hit") for message in messages)


def test_the_threads_given_to_a_worker_are_what_torch_reports_inside_it(
    logged_service: Callable[..., SessionService],
) -> None:
    # Neither the cores of this machine nor the tests' OMP_NUM_THREADS=1: set here.
    service = logged_service(cpus_per_session=3)
    view, _ = service.submit(request(SHORT_RUN))

    log = _completed(service, view.training_id)

    (start,) = _started(log)
    assert (start["intra"], start["inter"]) == (3, 3)
    assert "OMP_NUM_THREADS=3" in log and "MKL_NUM_THREADS=3" in log


def test_cpus_per_session_wins_then_the_services_variable_then_cores_shared() -> None:
    assert session_threads(3, 2, {"OMP_NUM_THREADS": "1"}, cores=8) == 3
    assert session_threads(None, 2, {"OMP_NUM_THREADS": "1"}, cores=8) == 1
    assert session_threads(None, 2, {}, cores=8) == 4
    assert session_threads(None, 3, {"OMP_NUM_THREADS": "x"}, cores=8) == 2
    assert session_threads(None, 4, {}, cores=2) == 1


def test_a_changed_data_file_is_prepared_again_by_the_warm_worker(
    logged_service: Callable[..., SessionService], sample_data_dir: Path, tmp_path: Path
) -> None:
    data_dir = Path(shutil.copytree(sample_data_dir, tmp_path / "data"))
    service = logged_service(data_dir=data_dir)
    first, _ = service.submit(request(SHORT_RUN))
    first_log = _completed(service, first.training_id)
    # Fewer bars, the same file name: a stale cache would train on the old arrays.
    write_sample_data(data_dir, symbols=("AAPL",), timeframes=("1h",), bars=2000)

    second, _ = service.submit(request(SHORT_RUN))
    second_log = _completed(service, second.training_id)

    assert _started(second_log)[0]["pid"] == _started(first_log)[0]["pid"]
    assert "prepared data cache miss" in second_log
    first_data, second_data = DATA.search(first_log), DATA.search(second_log)
    assert first_data is not None and second_data is not None
    assert int(second_data["train"]) < int(first_data["train"])


def test_a_session_stopped_and_resumed_on_a_warm_worker_reaches_a_fresh_runs_weights(
    logged_service: Callable[..., SessionService],
) -> None:
    service = logged_service()
    # The reference: prepared afresh (a cache miss), trained start to end.
    reference, _ = service.submit(request(RESUMABLE_RUN))
    assert "prepared data cache miss" in _completed(service, reference.training_id)

    service.submit(request(RESUMABLE_RUN), training_id="warm-resume")
    wait_until(lambda: service.get("warm-resume").progress.epoch >= 1, 240, "first epoch")
    service.stop("warm-resume")
    stopped = service.wait_for("warm-resume", FINAL, 120)
    assert stopped.status == "cancelled", stopped.error
    service.resume("warm-resume")
    log = _completed(service, "warm-resume")

    starts = _started(log)
    assert [start["attempt"] for start in starts] == [1, 2]
    assert starts[0]["pid"] == starts[1]["pid"]
    assert log.count("prepared data cache hit") == 2
    done = service.get("warm-resume")
    assert done.attempt == 2
    assert_same_weights(
        model_weights(done.model_path),
        model_weights(service.get(reference.training_id).model_path),
    )


def test_a_worker_whose_session_failed_is_replaced(
    logged_service: Callable[..., SessionService],
) -> None:
    service = logged_service()
    failed, _ = service.submit(request(DIVERGING))
    after, _ = service.submit(request(SHORT_RUN))

    assert service.wait_for(failed.training_id, FINAL, 240).status == "failed"
    after_log = _completed(service, after.training_id)

    (failed_start,) = _started(service.log(failed.training_id))
    (after_start,) = _started(after_log)
    assert after_start["pid"] != failed_start["pid"]
    assert after_start["session"] == 1


def test_a_worker_is_replaced_after_worker_max_sessions(
    logged_service: Callable[..., SessionService],
) -> None:
    service = logged_service(worker_max_sessions=2)
    views = [service.submit(request(SHORT_RUN))[0] for _ in range(3)]

    starts = [_started(_completed(service, view.training_id))[0] for view in views]

    assert starts[0]["pid"] == starts[1]["pid"]
    assert starts[2]["pid"] != starts[1]["pid"]
    assert [start["session"] for start in starts] == [1, 2, 1]


def test_sigterm_checkpoints_the_session_in_progress_and_ends_its_worker(
    logged_service: Callable[..., SessionService],
) -> None:
    service = logged_service()
    view, _ = service.submit(request(LONG_RUN))
    wait_until(lambda: service.get(view.training_id).progress.total_batches, 240, "progress")
    (start,) = _started(service.log(view.training_id))

    os.kill(start["pid"], signal.SIGTERM)
    interrupted = service.wait_for(view.training_id, {"interrupted", *FINAL}, 120)
    after, _ = service.submit(request(SHORT_RUN))
    after_log = _completed(service, after.training_id)

    assert interrupted.status == "interrupted", interrupted.error
    assert interrupted.checkpoint_path is not None
    assert _started(after_log)[0]["pid"] != start["pid"]
    wait_until(lambda: not running(start["pid"]), 60, "the terminated worker gone")


def test_a_waiting_worker_exits_when_its_service_is_killed(
    runtime_settings: RuntimeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    service = subprocess.Popen(service_command(runtime_settings, request(SHORT_RUN), "then-idle"))
    store = SessionStore(runtime_settings.database_url)
    try:

        def completed() -> bool:
            with contextlib.suppress(SQLAlchemyError):  # tables not created yet
                row = store.get("then-idle")
                return row is not None and row.status == "completed"
            return False

        wait_until(completed, 240, "the session completed")
        (worker,) = worker_pids(service.pid)  # warm, waiting for the next session
        assert running(worker)
    finally:
        service.kill()  # kill -9 of the service alone: its worker is not signalled
        service.wait()
        store.dispose()

    wait_until(lambda: not running(worker), 60, "the waiting worker gone")
