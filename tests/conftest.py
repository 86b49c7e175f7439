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
    "tests.fixtures.ray_cluster",
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
    """Tests marked ``gpu`` need CUDA and those marked ``mps`` Apple MPS: they run where the
    device exists and are skipped elsewhere. Tests marked ``ray`` share one cluster: under
    pytest-xdist (``make test``) they all go to one test process.

    Markers are looked up, not keywords: a keyword also matches a folder of that name
    (a checkout in ``.../gpu/`` would skip every test).
    """
    import torch

    present = {
        "gpu": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    reasons = {"gpu": "needs a CUDA device", "mps": "needs Apple MPS"}
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))
        for marker, available in present.items():
            if not available and item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reasons[marker]))
