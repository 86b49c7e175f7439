"""`make run` (deploy/local_stack.py) as a user runs it: real processes, real HTTP, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import find_free_port
from tests.deploy.running_stack import STARTUP_SECONDS, RunningStack
from tests.fixtures.waiting import wait_until

# A successful health check as the host's access log or the backend's HTTP client writes it.
HEALTH_CHECK = re.compile(r'"GET /health HTTP/1\.1" 200 |GET \S+/health "HTTP/1\.1 200 OK"')


@pytest.fixture
def start_stack(repo_root: Path) -> Iterator[Callable[..., RunningStack]]:
    """Start deploy/local_stack.py with the given options; stopped after the test."""
    stacks: list[RunningStack] = []

    def start(*args: str) -> RunningStack:
        stack = RunningStack(repo_root, [sys.executable, "deploy/local_stack.py", *args])
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()


def wait_for_health(url: str, process: subprocess.Popen[bytes]) -> None:
    def healthy() -> bool:
        assert process.poll() is None, f"the restarted host exited with {process.returncode}"
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, STARTUP_SECONDS, f"{url} to answer", interval=0.3)


def pid_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_make_run_serves_both_survives_host_stop_and_ctrl_c_stops_all(
    start_stack: Callable[..., RunningStack], tmp_path: Path, repo_root: Path
) -> None:
    host_port, backend_port = find_free_port(), find_free_port()
    stack = start_stack(
        "--host-port",
        str(host_port),
        "--backend-port",
        str(backend_port),
        "--state-dir",
        str(tmp_path),
    )

    stack.wait_for_line(r"Local stack is up")
    curl = stack.wait_for_line(r"curl -s -X POST (\S+)/api/trainings/start")
    stack.wait_for_line(r"^Start the host again")
    restart = stack.wait_for_line(r"^  (cd .*)$").group(1)
    pids = stack.child_pids()
    backend = f"http://127.0.0.1:{backend_port}"

    assert curl.group(1) == backend
    assert httpx.get(f"http://127.0.0.1:{host_port}/health").status_code == 200
    assert httpx.get(f"{backend}/health").status_code == 200
    host_status = httpx.get(f"{backend}/api/training-host/status").json()
    assert host_status["url"] == f"http://127.0.0.1:{host_port}"
    assert host_status["breaker"]["state"] == "closed"
    home = tmp_path / "host"
    assert sorted((home / "data").glob("AAPL_1h.*"))
    assert sorted((home / "strategies").glob("*.yaml"))
    assert (home / "state" / "training_host.db").is_file()
    # The compose file's backend healthcheck, pointed at this backend, passes.
    compose = yaml.safe_load((repo_root / "docker-compose.yml").read_text())
    snippet = compose["services"]["backend"]["healthcheck"]["test"][3]
    check = subprocess.run(
        [sys.executable, "-c", snippet.replace(":8000/", f":{backend_port}/")], check=False
    )
    assert check.returncode == 0
    # The backend's poller has reached the host (its first check may have come before the
    # host was up; the next one is health_check_interval_seconds later).
    interval = host_status["health_check_interval_seconds"]
    wait_until(
        lambda: (
            (httpx.get(f"{backend}/api/training-host/status").json()["last_health"] or {}).get("ok")
            is True
        ),
        interval * 3,
        "the backend's health poller to reach the host",
    )

    # Stopping the host leaves the backend up, to fall back on.
    os.kill(pids["host"], signal.SIGTERM)
    stack.wait_for_line(r"^host exited .* the backend keeps running")
    assert httpx.get(f"{backend}/health").status_code == 200

    # The printed line alone starts the same host again: same home, same port.
    again = subprocess.Popen(["bash", "-c", restart], start_new_session=True)
    try:
        wait_for_health(f"http://127.0.0.1:{host_port}/health", again)
        listed = httpx.get(f"http://127.0.0.1:{host_port}/trainings").json()
        assert listed["total"] == 0
    finally:
        os.killpg(again.pid, signal.SIGTERM)
        again.wait(timeout=60)

    stack.process.send_signal(signal.SIGINT)

    assert stack.process.wait(timeout=120) == 0
    stack.wait_for_line(r"^Stopped\.")
    assert set(pids) == {"host", "backend"}
    assert all(pid_is_gone(pid) for pid in pids.values())
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{backend}/health", timeout=2)
    # Health checks (the backend's poller, the script's and this test's) stay out of the
    # stream, and in the log files.
    assert [line for line in stack.output if HEALTH_CHECK.search(line)] == []
    host_log = (tmp_path / "logs" / "host.log").read_text()
    backend_log = (tmp_path / "logs" / "backend.log").read_text()
    assert '"GET /health HTTP/1.1" 200 OK' in host_log
    assert f'GET http://127.0.0.1:{host_port}/health "HTTP/1.1 200 OK"' in backend_log


@pytest.mark.slow
def test_make_run_without_host_shows_the_backend_alone(
    start_stack: Callable[..., RunningStack], tmp_path: Path
) -> None:
    host_port, backend_port = find_free_port(), find_free_port()
    stack = start_stack(
        "--no-host",
        "--show-health-checks",
        "--host-port",
        str(host_port),
        "--backend-port",
        str(backend_port),
        "--state-dir",
        str(tmp_path),
    )

    stack.wait_for_line(r"Local stack is up")
    status = httpx.get(f"http://127.0.0.1:{backend_port}/api/training-host/status").json()

    assert set(stack.child_pids()) == {"backend"}
    assert status["url"] == f"http://127.0.0.1:{host_port}"
    # --show-health-checks streams them.
    assert httpx.get(f"http://127.0.0.1:{backend_port}/health").status_code == 200
    stack.wait_for_line(r'^\[backend\] .*"GET /health HTTP/1\.1" 200 OK', timeout=30)

    def failed_health_check() -> dict[str, Any] | None:
        status = httpx.get(f"http://127.0.0.1:{backend_port}/api/training-host/status").json()
        health = status["last_health"]
        return status if health is not None and not health["ok"] else None

    status = wait_until(failed_health_check, 30, "a failed health check", interval=0.5)
    assert status["last_health"]["ok"] is False
    stack.process.send_signal(signal.SIGTERM)
    assert stack.process.wait(timeout=120) == 0


@pytest.mark.slow
def test_make_run_reports_a_service_that_cannot_start_and_stops_the_other(
    start_stack: Callable[..., RunningStack], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host_port = taken.getsockname()[1]
        stack = start_stack(
            "--host-port",
            str(host_port),
            "--backend-port",
            str(find_free_port()),
            "--state-dir",
            str(tmp_path),
        )

        error = stack.wait_for_line(r"local_stack: error: (.*)")

        assert stack.process.wait(timeout=120) == 1
    assert error.group(1).startswith("host exited with status")
    assert all(pid_is_gone(pid) for pid in stack.child_pids().values())


def test_make_run_rejects_equal_ports(repo_root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(repo_root / "deploy" / "local_stack.py"),
            "--host-port",
            "9000",
            "--backend-port",
            "9000",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert "--host-port and --backend-port must differ" in result.stderr
    assert "Traceback" not in result.stderr


def test_make_run_passes_args_to_the_stack(repo_root: Path) -> None:
    # -o: never (re)build .venv here; the recipe runs with the checkout's .venv as it is.
    result = subprocess.run(
        ["make", "-o", ".venv/.installed", "run", "ARGS=--help --host-port 17001"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "deploy/local_stack.py --help --host-port 17001" in result.stdout
    assert "--show-health-checks" in result.stdout
    assert "usage: local_stack.py" in result.stdout
