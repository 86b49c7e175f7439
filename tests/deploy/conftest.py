"""Fixtures for the deployment tests: deploy/local_stack.py loaded as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def local_stack(repo_root: Path) -> ModuleType:
    """deploy/local_stack.py (a script, not a package), for its wait_for_health and defaults."""
    path = repo_root / "deploy" / "local_stack.py"
    spec = importlib.util.spec_from_file_location("local_stack", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_stack"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
