"""How worker processes start: forked from a fork server that imported torch once (Linux's
default), or spawned as fresh interpreters; and how a worker knows its service is gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError
from training_sessions.process_watch import process_start_time, service_watch
from training_sessions.service import SessionService
from training_sessions.store import SessionStore
from training_sessions.types import RuntimeSettings

from tests.fixtures.processes import parent_of, running, worker_pids
from tests.fixtures.waiting import wait_until
from tests.sessions.conftest import FINAL, LONG_RUN, SHORT_RUN, request
from tests.sessions.test_recovery import service_command

# Long enough to still run after two signals to its fork server, short for a test.
UNTIL_KILLED_RUN = {"epochs": 4, "batch_size": 8, "early_stopping": {"enabled": False}}
# A service whose fork server preloads a module that raises, running one session.
FAILING_FORK_SERVER = """
import logging
from pathlib import Path
from training_sessions.runners import local
from training_sessions.service import SessionService
from training_sessions.types import RuntimeSettings, TrainingRequest

logging.basicConfig(level=logging.INFO)
local.FORK_SERVER_PRELOAD = ["broken_preload"]
service = SessionService(RuntimeSettings(
    database_url={settings}, data_dir=Path({data}), models_dir=Path({models}),
    strategies_dir=Path({strategies}), checkpoints_dir=Path({checkpoints}),
    default_device="cpu",
))
service.start()
try:
    view, _ = service.submit(TrainingRequest(config={{"epochs": 1}}))
    done = service.wait_for(view.training_id, {{"completed", "failed", "cancelled"}}, 240)
    print("status", done.status, done.error)
finally:
    service.shutdown(grace_seconds=5.0)
"""

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _worker_pid(service: SessionService, training_id: str) -> int:
    """The pid the session's worker wrote in its log."""
    log = service.log(training_id)
    return int(log.split("worker started (pid ", 1)[1].split(",", 1)[0])


@needs_proc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux's")
def test_a_worker_started_by_default_on_linux_is_forked_by_the_fork_server(
    make_service: Callable[..., SessionService], tmp_path: Path
) -> None:
    service = make_service(log_dir=tmp_path / "logs")
    view, _ = service.submit(request(LONG_RUN))
    wait_until(lambda: service.get(view.training_id).progress.total_batches, 240, "progress")

    worker = _worker_pid(service, view.training_id)
    fork_server = parent_of(worker)
    service.stop(view.training_id)

    assert fork_server != os.getpid()
    assert parent_of(fork_server) == os.getpid()
    assert b"multiprocessing.forkserver" in Path(f"/proc/{fork_server}/cmdline").read_bytes()
    assert worker in worker_pids(os.getpid())
    assert service.wait_for(view.training_id, FINAL, 120).status == "cancelled"


@needs_proc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux's")
def test_sessions_outlive_their_fork_server_which_ignores_sigterm(
    make_service: Callable[..., SessionService], tmp_path: Path
) -> None:
    service = make_service(log_dir=tmp_path / "logs")
    view, _ = service.submit(request(UNTIL_KILLED_RUN))
    wait_until(lambda: service.get(view.training_id).progress.total_batches, 240, "progress")
    worker = _worker_pid(service, view.training_id)
    fork_server = parent_of(worker)

    os.kill(fork_server, signal.SIGTERM)  # a group's SIGTERM reaches it: it stays
    wait_until(lambda: service.get(view.training_id).progress.epoch >= 1, 120, "an epoch")
    survived_sigterm = running(fork_server)
    os.kill(fork_server, signal.SIGKILL)  # the OOM killer: its workers' status goes with it
    done = service.wait_for(view.training_id, FINAL, 240)
    after, _ = service.submit(request(SHORT_RUN))  # the next worker: a new fork server
    after_done = service.wait_for(after.training_id, FINAL, 240)

    assert survived_sigterm
    assert done.status == "completed", done.error
    assert [row["epoch"] for row in service.performance(view.training_id).history] == list(
        range(1, UNTIL_KILLED_RUN["epochs"] + 1)
    )
    assert after_done.status == "completed", after_done.error
    assert parent_of(_worker_pid(service, after.training_id)) not in {fork_server, os.getpid()}


def test_a_fork_server_that_cannot_start_leaves_workers_spawned(
    runtime_settings: RuntimeSettings, tmp_path: Path
) -> None:
    # A preload that raises kills the fork server while it loads (only ImportError is
    # forgiven): the service says so and spawns its workers instead.
    (tmp_path / "broken_preload.py").write_text("raise RuntimeError('preload broke')\n")
    script = FAILING_FORK_SERVER.format(
        settings=repr(str(runtime_settings.database_url)),
        data=repr(str(runtime_settings.data_dir)),
        models=repr(str(tmp_path / "models")),
        strategies=repr(str(runtime_settings.strategies_dir)),
        checkpoints=repr(str(tmp_path / "checkpoints")),
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["OMP_NUM_THREADS"] = "1"
    finished = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "status completed" in finished.stdout, finished.stdout
    assert "the fork server did not start a worker" in finished.stderr
    assert "spawning workers instead" in finished.stderr


@needs_proc
def test_worker_start_spawn_gives_each_worker_a_fresh_interpreter_child_of_the_service(
    make_service: Callable[..., SessionService], tmp_path: Path
) -> None:
    service = make_service(log_dir=tmp_path / "logs", worker_start="spawn")
    view, _ = service.submit(request(LONG_RUN))
    wait_until(lambda: service.get(view.training_id).progress.total_batches, 240, "progress")

    worker = _worker_pid(service, view.training_id)
    parent = parent_of(worker)
    service.stop(view.training_id)

    assert parent == os.getpid()
    assert b"spawn_main" in Path(f"/proc/{worker}/cmdline").read_bytes()
    assert service.wait_for(view.training_id, FINAL, 120).status == "cancelled"


@needs_proc
def test_a_training_worker_stops_by_itself_when_its_service_is_killed(
    runtime_settings: RuntimeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker is the fork server's child, not the service's: it watches the service.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    service = subprocess.Popen(service_command(runtime_settings, request(LONG_RUN), "orphan"))
    store = SessionStore(runtime_settings.database_url)
    try:

        def training() -> bool:
            with contextlib.suppress(SQLAlchemyError):  # tables not created yet
                return bool(store.epochs("orphan"))
            return False

        wait_until(training, 240, "the first epoch stored")
        (worker,) = worker_pids(service.pid)
        assert parent_of(worker) != service.pid
    finally:
        service.send_signal(signal.SIGKILL)  # the service alone: its worker is not signalled
        store.dispose()
    try:
        # Not reaped yet, the killed service is a zombie: that counts as gone.
        wait_until(lambda: not running(worker), 60, "the orphaned worker gone")
    finally:
        service.wait()


@needs_proc
def test_the_service_watch_sees_a_process_end_even_before_it_is_reaped() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = service_watch(process.pid)
        assert watch() is True
        process.send_signal(signal.SIGKILL)
        wait_until(lambda: not watch(), 30, "the killed process seen as gone")
        assert process.poll() is not None or process_start_time(process.pid) is None
    finally:
        process.kill()
        process.wait()

    assert service_watch(process.pid)() is False  # reaped: no such process
    assert service_watch(os.getppid())() is True  # a parent is watched through getppid
