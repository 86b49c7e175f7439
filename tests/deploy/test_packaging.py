"""pyproject.toml lists every package, so a non-editable install (the Dockerfile's) has them all."""

from __future__ import annotations

import tomllib
from pathlib import Path


def _package_dirs(repo_root: Path) -> set[str]:
    config = tomllib.loads((repo_root / "pyproject.toml").read_text())
    found: set[str] = set()
    for top, folder in config["tool"]["setuptools"]["package-dir"].items():
        root = repo_root / folder
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root)
            found.add(".".join((top, *relative.parts)))
    return found


def test_every_package_folder_is_listed_in_pyproject(repo_root: Path) -> None:
    listed = set(
        tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )

    assert _package_dirs(repo_root) - listed == set()
    assert listed - _package_dirs(repo_root) == set()
