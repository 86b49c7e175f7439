"""The import-linter contracts in pyproject.toml hold, and each one breaks on a planted import.

``lint-imports`` runs on a copy of the four packages so a planted module never touches the
checkout; without the planted cases a contract that matches nothing would pass silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_FOLDERS = {
    "training_engine": "training-engine",
    "training_sessions": "training-sessions",
    "training_host": "training-host-service",
    "backend_proxy": "backend-proxy",
}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_copy(repo_root: Path, tmp_path: Path, planted: dict[str, str]) -> tuple[int, str]:
    """Copy the packages, plant ``planted`` (module path -> source: a new module, or lines
    added to the end of an existing one), run lint-imports on them."""
    for package, folder in PACKAGE_FOLDERS.items():
        shutil.copytree(
            repo_root / folder / package,
            tmp_path / folder / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    for module, source in planted.items():
        with (tmp_path / module).open("a") as handle:
            handle.write(f"\n{source}")
    env = dict(os.environ, COLUMNS="1000")  # one line per contract in the report
    env["PYTHONPATH"] = os.pathsep.join(
        str(tmp_path / folder) for folder in PACKAGE_FOLDERS.values()
    )
    completed = subprocess.run(
        [
            str(LINT_IMPORTS),
            "--config",
            str(repo_root / "pyproject.toml"),
            "--no-cache",
            "--no-logo",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def test_the_packages_keep_every_contract(repo_root: Path, tmp_path: Path) -> None:
    code, output = _lint_copy(repo_root, tmp_path, {})
    assert code == 0, output
    assert "4 kept, 0 broken" in output


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        (
            "training-engine/training_engine/planted.py",
            "import sqlalchemy\n",
            "The engine knows nothing of HTTP or databases BROKEN",
        ),
        (
            "training-engine/training_engine/planted.py",
            "import training_sessions\n",
            "the host and the proxy never import each other BROKEN",
        ),
        (
            "training-sessions/training_sessions/planted.py",
            "from fastapi import FastAPI\n",
            "except its HTTP glue (training_sessions.http) BROKEN",
        ),
        (
            "training-sessions/training_sessions/planted.py",
            "from starlette.requests import Request\n",
            "except its HTTP glue (training_sessions.http) BROKEN",
        ),
        (
            "training-host-service/training_host/planted.py",
            "from backend_proxy import config\n",
            "the host and the proxy never import each other BROKEN",
        ),
        (
            "training-engine/training_engine/strategy/planted.py",
            "from training_engine.models import build_model\n",
            "-> strategy -> indicators BROKEN",
        ),
        (
            "training-engine/training_engine/strategy/planted.py",
            "def optimizer_names() -> object:\n    from training_engine import optim\n\n"
            "    return optim\n",
            "-> strategy -> indicators BROKEN",
        ),
        (
            "training-engine/training_engine/indicators.py",
            "from training_engine.strategy import IndicatorSpec  # planted\n",
            "-> strategy -> indicators BROKEN",
        ),
        (
            "backend-proxy/backend_proxy/planted.py",
            "import training_host.config\n",
            "the host and the proxy never import each other BROKEN",
        ),
    ],
    ids=[
        "engine-sqlalchemy",
        "engine-sessions",
        "sessions-fastapi",
        "sessions-starlette",
        "host-proxy",
        "strategy-models",
        "strategy-optim-inside-a-function",
        "indicators-strategy",
        "proxy-host",
    ],
)
def test_a_planted_import_breaks_its_contract(
    repo_root: Path, tmp_path: Path, module: str, source: str, broken: str
) -> None:
    code, output = _lint_copy(repo_root, tmp_path, {module: source})
    assert code != 0
    assert broken in output, output
    # The report names the planted import's module (training_engine.strategy.planted).
    dotted = module.split("/", 1)[1].removesuffix(".py").replace("/", ".")
    assert f"{dotted} -> " in output, output
