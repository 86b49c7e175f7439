"""`make run` (deploy/local_stack.py) as a user runs it: real processes, real HTTP, Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import find_free_port
from tests.fixtures.waiting import WaitTimeout, wait_until

STARTUP_SECONDS = 180.0


class RunningStack:
    """deploy/local_stack.py in its own process, its output collected line by line."""

    def __init__(self, repo_root: Path, *args: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(repo_root / "deploy" / "local_stack.py"), *args],
            cwd=repo_root,
            env={k: v for k, v in os.environ.items() if not k.startswith("TRAINING_HOST_")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for_line(self, pattern: str, timeout: float = STARTUP_SECONDS) -> re.Match[str]:
        def next_match() -> re.Match[str] | None:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                return None
            if line == "":
                raise WaitTimeout(f"output ended before {pattern!r}")
            self.output.append(line)
            return re.search(pattern, line)

        try:
            return wait_until(next_match, timeout, f"a line matching {pattern!r}", interval=0)
        except WaitTimeout as exc:
            raise AssertionError(f"{exc}; output:\n{''.join(self.output)}") from None

    def child_pids(self) -> dict[str, int]:
        return {
            m.group(1): int(m.group(2))
            for line in self.output
            if (m := re.match(r"^(host|backend): pid (\d+)", line))
        }

    def stop(self) -> None:
        """SIGTERM, so the script stops its own children; SIGKILL only if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@pytest.fixture
def start_stack(repo_root: Path) -> Iterator[Callable[..., RunningStack]]:
    """Start deploy/local_stack.py with the given options; stopped after the test."""
    stacks: list[RunningStack] = []

    def start(*args: str) -> RunningStack:
        stack = RunningStack(repo_root, *args)
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


@pytest.mark.slow
def test_make_run_without_host_shows_the_backend_alone(
    start_stack: Callable[..., RunningStack], tmp_path: Path
) -> None:
    host_port, backend_port = find_free_port(), find_free_port()
    stack = start_stack(
        "--no-host",
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
