"""The real host process's log: timestamps on every line, request ids, the start summary."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.servers import run_host_service

pytestmark = pytest.mark.slow

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def wait_for_log_line(log_path: Path, needle: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if needle in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no log line with {needle!r}:\n{log_path.read_text()[-3000:]}")


def test_log_lines_are_timestamped_with_request_ids_and_a_start_summary(
    tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    env = {"TRAINING_HOST_LOG_LEVEL": "info"}
    with run_host_service(tmp_path, free_port, env, sample_data_dir) as service:
        chosen = httpx.get(f"{service.url}/health", headers={"X-Request-ID": "trace-42"})
        insane = httpx.get(f"{service.url}/health", headers={"X-Request-ID": "a" * 300})
        generated = httpx.get(f"{service.url}/trainings/nope/status")
        access = wait_for_log_line(service.log_path, "request_id=trace-42")
        missing = wait_for_log_line(
            service.log_path, f"request_id={generated.headers['x-request-id']}"
        )
        summary = wait_for_log_line(service.log_path, "started with ")

    assert chosen.headers["x-request-id"] == "trace-42"
    assert re.fullmatch(r"[0-9a-f]{32}", insane.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert '"GET /health HTTP/1.1" 200' in access
    assert '"GET /trainings/nope/status HTTP/1.1" 404' in missing
    assert "database sqlite:///" in summary
    assert f"data {sample_data_dir} (" in summary and "strategies " in summary
    assert "device cpu" in summary and summary.endswith("sessions resumed 0")
    assert "config file" in summary
    lines = [line for line in service.log_path.read_text().splitlines() if line.strip()]
    untimed = [line for line in lines if not TIMESTAMP.match(line)]
    assert not untimed, f"lines without a timestamp: {untimed[:5]}"
