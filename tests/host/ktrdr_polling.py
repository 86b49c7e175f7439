"""Shared pieces of the KTRDR contract tests: one host process per module, and polling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import find_free_port
from tests.fixtures.servers import HostServiceProcess, run_host_service

POLL_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def ktrdr_host(
    tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path
) -> Iterator[HostServiceProcess]:
    """One real host service process for a module's KTRDR contract tests."""
    tmp = tmp_path_factory.mktemp("ktrdr_host")
    with run_host_service(tmp, find_free_port(), data_dir=sample_data_dir) as service:
        yield service


@pytest.fixture
def ktrdr_client(ktrdr_host: HostServiceProcess) -> Iterator[httpx.Client]:
    """A client without auth, as KTRDR's are (30 s timeout like KTRDR's adapters)."""
    with httpx.Client(base_url=ktrdr_host.url, timeout=30.0) as client:
        yield client


def poll_json(
    client: httpx.Client,
    path: str,
    done: Callable[[dict[str, Any]], bool],
    on_poll: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = POLL_TIMEOUT_S,
) -> dict[str, Any]:
    """GET ``path`` every 0.2 s (as KTRDR's pollers do) until ``done(answer)``."""
    deadline = time.monotonic() + timeout
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(path)
        assert response.status_code == 200, response.text
        answer = response.json()
        if on_poll is not None:
            on_poll(answer)
        if done(answer):
            return answer
        time.sleep(0.2)
    pytest.fail(f"{path} not done after {timeout}s; last answer: {answer}")
