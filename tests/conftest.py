"""Fixtures shared by every test package; each family lives in tests/fixtures/."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.market_data",
    "tests.fixtures.servers",
    "tests.fixtures.postgres",
    "tests.fixtures.browser",
    "tests.fixtures.fake_ktrdr_backend",
    "tests.fixtures.databases",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout the tests run from."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def strategies_dir(repo_root: Path) -> Path:
    """The example strategies shipped under config/strategies/."""
    return repo_root / "config" / "strategies"


def find_free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return find_free_port()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` need CUDA: they run on a GPU machine and are skipped elsewhere."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
