"""The one check every path the engine and the services write goes through."""

from __future__ import annotations

from pathlib import Path

from training_engine.errors import UnsafePathError


def path_inside(root: Path, *parts: str, what: str = "path") -> Path:
    """``root / parts``, resolved, refused unless it lies inside ``root``.

    Symlinks and ``..`` are resolved first, so neither can lead out. The error names
    the parts the caller supplied, never ``root`` (clients must not learn the folders).

    Raises:
        UnsafePathError: the path would be ``root`` itself or outside it.
    """
    base = Path(root).resolve()
    candidate = base.joinpath(*parts).resolve()
    if candidate == base or not candidate.is_relative_to(base):
        shown = "/".join(parts)
        raise UnsafePathError(f"{what} {shown!r} would lie outside its folder")
    return candidate
