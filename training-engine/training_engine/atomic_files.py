"""Files and folders written all at once or not at all: staged beside their name, renamed.

:func:`write_atomically` writes one file (temp file in the same folder, fsync, rename);
:func:`write_new_version` writes a new ``{prefix}_v{N}`` folder (the one version allocator
of every model folder layout: ours and KTRDR's).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from training_engine.paths import path_inside

_VERSION = re.compile(r"_v(\d+)$")


def write_atomically(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it to ``path``.

    A crash or a full disk at any moment leaves either the previous file or the new
    one, never a torn file; the temporary file is removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # Persist the rename itself, so the new name survives a power cut.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_new_version(parent: Path, prefix: str, write: Callable[[Path, int], None]) -> Path:
    """Write the folder ``parent/{prefix}_v{N}`` with N one above the highest there; return it.

    The name is reserved with an exclusive ``mkdir`` (two runs finishing together get
    different versions); ``write(staging, N)`` fills a temporary sibling, which then
    replaces the empty reserved folder in one rename, so a half-written folder is never
    visible under the final name. On failure both are removed and the error propagates.

    Raises:
        UnsafePathError: ``prefix`` would lead out of ``parent``.
    """
    parent.mkdir(parents=True, exist_ok=True)
    target, version = _reserve(parent, prefix)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        write(staging, version)
        # POSIX rename replaces the empty reserved directory in one step.
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        target.rmdir()
        raise
    return target


def _reserve(parent: Path, prefix: str) -> tuple[Path, int]:
    versions = [
        int(match.group(1))
        for entry in parent.iterdir()
        if entry.name.startswith(f"{prefix}_v") and (match := _VERSION.search(entry.name))
    ]
    version = max(versions, default=0) + 1
    while True:
        candidate = path_inside(parent, f"{prefix}_v{version}", what="model folder")
        try:
            candidate.mkdir(exist_ok=False)
        except FileExistsError:
            version += 1  # another run took this version first
            continue
        return candidate, version
