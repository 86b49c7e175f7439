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

from tests.fixtures.processes import worker_pids
from tests.fixtures.waiting import wait_until
from tests.sessions.conftest import FINAL, LONG_RUN, request
from tests.sessions.test_recovery import service_command

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _worker_pid(service: SessionService, training_id: str) -> int:
    """The pid the session's worker wrote in its log."""
    log = service.log(training_id)
    return int(log.split("worker started (pid ", 1)[1].split(",", 1)[0])


def _running(pid: int) -> bool:
    return process_start_time(pid) is not None


@needs_proc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux's")
def test_a_worker_started_by_default_on_linux_is_forked_by_the_fork_server(
    make_service: Callable[..., SessionService], tmp_path: Path
) -> None:
    service = make_service(log_dir=tmp_path / "logs")
    view, _ = service.submit(request(LONG_RUN))
    wait_until(lambda: service.get(view.training_id).progress.total_batches, 240, "progress")

    worker = _worker_pid(service, view.training_id)
    fork_server = _parent_of(worker)
    service.stop(view.training_id)

    assert fork_server != os.getpid()
    assert _parent_of(fork_server) == os.getpid()
    assert b"multiprocessing.forkserver" in Path(f"/proc/{fork_server}/cmdline").read_bytes()
    assert worker in worker_pids(os.getpid())
    assert service.wait_for(view.training_id, FINAL, 120).status == "cancelled"


@needs_proc
def test_worker_start_spawn_gives_each_worker_a_fresh_interpreter_child_of_the_service(
    make_service: Callable[..., SessionService], tmp_path: Path
) -> None:
    service = make_service(log_dir=tmp_path / "logs", worker_start="spawn")
    view, _ = service.submit(request(LONG_RUN))
    wait_until(lambda: service.get(view.training_id).progress.total_batches, 240, "progress")

    worker = _worker_pid(service, view.training_id)
    parent = _parent_of(worker)
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
        assert _parent_of(worker) != service.pid
    finally:
        service.send_signal(signal.SIGKILL)  # the service alone: its worker is not signalled
        store.dispose()
    try:
        # Not reaped yet, the killed service is a zombie: that counts as gone.
        wait_until(lambda: not _running(worker), 60, "the orphaned worker gone")
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
