"""A service's models in its models folder: list, read, archive, delete (both services).

A model folder is ``{models_dir}/{strategy}/{SYMBOLS}_{timeframe}_v{N}/`` with its
``metadata.json``; KTRDR's copy is the one its ``ktrdr_export.json`` names under
``{models_dir}/ktrdr/``. A folder's ``model_id`` is the one written in its metadata, or
for a folder written before ids existed ``{strategy}.{name}.{8 hex of sha256(path)}``.
Every path is resolved inside the models folder (``training_engine.paths``): no
symlink is followed out, and none is put into an archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from training_engine.artifacts import METADATA_FILE
from training_engine.errors import UnsafePathError
from training_engine.ktrdr_export import KTRDR_MODELS_SUBDIR, SUMMARY_FILE
from training_engine.paths import path_inside

from training_sessions.contract import MAX_LIST_OFFSET, TrainingId, UtcTimestamp
from training_sessions.errors import ModelInUseError, ModelNotFoundError
from training_sessions.service import SessionService
from training_sessions.types import SessionStatus

MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ArchiveFormat = Literal["tar.gz", "zip"]
MEDIA_TYPES: dict[str, str] = {"tar.gz": "application/gzip", "zip": "application/zip"}
_VERSION = re.compile(r"^(?P<prefix>.+)_v(?P<version>\d+)$")
_UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


class ModelSummary(BaseModel):
    """One trained model, as the list shows it."""

    model_id: str = Field(description="unique and stable; safe in a path")
    name: str = Field(description="the folder's name, e.g. AAPL_1h_v3")
    strategy: str | None
    symbols: list[str]
    timeframes: list[str]
    model_type: str | None
    created_at: UtcTimestamp | None
    training_id: str | None = Field(description="the training that wrote it; null for a CLI run")
    test_metrics: dict[str, Any] | None
    verdict: str | None = Field(description="the evaluation's verdict")
    path: str = Field(description="relative to the models folder")
    ktrdr_path: str | None = Field(description="KTRDR's copy, relative to the models folder")
    size_bytes: int


class ModelDetail(ModelSummary):
    """One model with its evaluation, features, resolved strategy and files."""

    evaluation: dict[str, Any] | None
    feature_names: list[str]
    resolved_strategy: dict[str, Any] | None = Field(description="the strategy as trained")
    files: list[str] = Field(description="its files, relative to its folder")


class ModelList(BaseModel):
    """``GET /models``: newest first, and how many match the filters."""

    models: list[ModelSummary]
    total: int


@dataclass(frozen=True, slots=True)
class ModelFilter:
    """``GET /models``'s filters and page."""

    strategy: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    training_id: str | None = None
    limit: int = 50
    offset: int = 0

    def matches(self, model: ModelSummary) -> bool:
        return (
            (self.strategy is None or model.strategy == self.strategy)
            and (self.symbol is None or self.symbol in model.symbols)
            and (self.timeframe is None or self.timeframe in model.timeframes)
            and (self.training_id is None or model.training_id == self.training_id)
        )

    def query_params(self) -> dict[str, Any]:
        """The filters as ``GET /models`` takes them (the page left to the caller)."""
        wanted = {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "training_id": self.training_id,
        }
        return {name: value for name, value in wanted.items() if value is not None}


# A filter's text: no control characters, at most 128 characters.
ModelFilterText = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,128}$")]


class ModelListQuery(BaseModel):
    """``GET /models`` (the backend: ``/api/models``)'s filters and page."""

    strategy: ModelFilterText | None = Field(default=None, description="the strategy's name")
    symbol: ModelFilterText | None = None
    timeframe: ModelFilterText | None = None
    training_id: TrainingId | None = Field(default=None, description="the training that wrote it")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_LIST_OFFSET)

    def to_filter(self) -> ModelFilter:
        return ModelFilter(**self.model_dump())


class DownloadQuery(BaseModel):
    format: ArchiveFormat = Field(default="tar.gz", description="tar.gz or zip")


class DeleteModelQuery(BaseModel):
    force: bool = Field(
        default=False, description="delete it even though a training still names it"
    )


class ModelDeleted(BaseModel):
    """``DELETE /models/{model_id}``: what was removed."""

    model_id: str
    deleted: Literal[True] = True
    files_removed: list[str] = Field(description="relative paths of the files removed")


@dataclass(frozen=True, slots=True)
class ModelFolder:
    """A model folder found in the models folder."""

    model_id: str
    folder: Path
    relative: str
    metadata: dict[str, Any]
    ktrdr_folder: Path | None

    @property
    def created_at(self) -> str:
        return str(self.metadata.get("created_at") or "")


def scan_models(models_dir: Path) -> list[ModelFolder]:
    """Every model folder under ``models_dir``, newest first (KTRDR's copies left out)."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = []
    for strategy_dir in sorted(root.iterdir()):
        if strategy_dir.name == KTRDR_MODELS_SUBDIR or not _real_dir(strategy_dir):
            continue
        for folder in sorted(strategy_dir.iterdir()):
            model = _read_folder(root, folder)
            if model is not None:
                found.append(model)
    return sorted(found, key=lambda model: model.created_at, reverse=True)


def find_model(models_dir: Path, model_id: str) -> ModelFolder:
    """The folder of ``model_id``. Raises ModelNotFoundError."""
    for model in scan_models(models_dir):
        if model.model_id == model_id:
            return model
    raise ModelNotFoundError(model_id)


def summary_of(model: ModelFolder, training_id: str | None) -> ModelSummary:
    metadata = model.metadata
    evaluation = metadata.get("evaluation")
    verdict = evaluation.get("verdict") if isinstance(evaluation, dict) else None
    if isinstance(verdict, dict):  # the engine's verdict object: its sentence
        verdict = verdict.get("verdict")
    model_config = metadata.get("model_config")
    root = model.folder.parents[1]
    return ModelSummary(
        model_id=model.model_id,
        name=model.folder.name,
        strategy=metadata.get("strategy_name"),
        symbols=list(metadata.get("symbols") or []),
        timeframes=[str(metadata["base_timeframe"])] if metadata.get("base_timeframe") else [],
        model_type=model_config.get("type") if isinstance(model_config, dict) else None,
        created_at=_instant(metadata.get("created_at")),
        training_id=training_id,
        test_metrics=metadata.get("test_metrics"),
        verdict=verdict if isinstance(verdict, str) else None,
        path=model.relative,
        ktrdr_path=str(model.ktrdr_folder.relative_to(root)) if model.ktrdr_folder else None,
        size_bytes=sum(path.stat().st_size for _, path in _files(model.folder)),
    )


def detail_of(model: ModelFolder, training_id: str | None) -> ModelDetail:
    metadata = model.metadata
    evaluation = metadata.get("evaluation")
    return ModelDetail(
        **dict(summary_of(model, training_id)),
        evaluation=evaluation if isinstance(evaluation, dict) else None,
        feature_names=list(metadata.get("feature_names") or []),
        resolved_strategy=_resolved_strategy(model.folder),
        files=[name for name, _ in _files(model.folder)],
    )


def archive_chunks(model: ModelFolder, archive_format: ArchiveFormat) -> Iterator[bytes]:
    """The model folder (and KTRDR's copy under ``ktrdr/``) as one archive, file by file."""
    entries = [(f"{model.model_id}/{name}", path) for name, path in _files(model.folder)]
    if model.ktrdr_folder is not None:
        entries += [
            (f"{model.model_id}/ktrdr/{name}", path) for name, path in _files(model.ktrdr_folder)
        ]
    buffer = _Chunks()
    if archive_format == "zip":
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in entries:
                archive.write(path, name)
                yield buffer.take()
    else:
        with tarfile.open(fileobj=buffer, mode="w|gz") as tar:
            for name, path in entries:
                tar.add(path, arcname=name, recursive=False)
                yield buffer.take()
    yield buffer.take()


def delete_model_folder(models_dir: Path, model: ModelFolder) -> list[str]:
    """Remove the folder and KTRDR's copy (moving its ``_latest`` link); the files removed."""
    root = Path(models_dir).resolve()
    removed = [str((model.folder / name).relative_to(root)) for name, _ in _files(model.folder)]
    shutil.rmtree(model.folder)
    if model.ktrdr_folder is not None:
        removed += [
            str((model.ktrdr_folder / name).relative_to(root))
            for name, _ in _files(model.ktrdr_folder)
        ]
        shutil.rmtree(model.ktrdr_folder)
        _repoint_latest(model.ktrdr_folder)
    return removed


def _read_folder(root: Path, folder: Path) -> ModelFolder | None:
    if not _real_dir(folder) or not (folder / METADATA_FILE).is_file():
        return None
    try:
        inside = path_inside(root, folder.parent.name, folder.name, what="model folder")
        metadata = json.loads((inside / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnsafePathError):
        return None
    if not isinstance(metadata, dict):
        return None
    relative = f"{folder.parent.name}/{folder.name}"
    model_id = metadata.get("model_id")
    if not isinstance(model_id, str) or not re.match(MODEL_ID_PATTERN, model_id):
        # Written before ids existed: derived from where it lies, so it never changes.
        digest = hashlib.sha256(relative.encode()).hexdigest()[:8]
        readable = _UNSAFE_ID_CHARACTERS.sub("-", f"{folder.parent.name}.{folder.name}")
        model_id = f"{readable[:110]}.{digest}".lstrip("._-")
    return ModelFolder(model_id, inside, relative, metadata, _ktrdr_folder(root, inside))


def _ktrdr_folder(root: Path, folder: Path) -> Path | None:
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    named = summary.get("ktrdr_model_path") if isinstance(summary, dict) else None
    if not isinstance(named, str):
        return None
    ktrdr_root = root / KTRDR_MODELS_SUBDIR
    try:
        relative = Path(named).resolve().relative_to(ktrdr_root.resolve())
        copy = path_inside(ktrdr_root, *relative.parts, what="KTRDR model folder")
    except (ValueError, UnsafePathError):
        return None
    return copy if _real_dir(copy) else None


def _files(folder: Path) -> list[tuple[str, Path]]:
    """The regular files in ``folder`` (relative name, path); links are neither followed nor
    listed."""
    files = []
    for directory, subdirs, names in os.walk(folder, followlinks=False):
        subdirs[:] = [name for name in subdirs if not Path(directory, name).is_symlink()]
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                files.append((str(path.relative_to(folder)), path))
    return sorted(files)


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _repoint_latest(deleted: Path) -> None:
    match = _VERSION.match(deleted.name)
    if match is None:
        return
    prefix = match["prefix"]
    link = deleted.parent / f"{prefix}_latest"
    if not link.is_symlink() or os.readlink(link) != deleted.name:
        return
    versions = sorted(
        (int(m["version"]), sibling.name)
        for sibling in deleted.parent.iterdir()
        if (m := _VERSION.match(sibling.name)) and m["prefix"] == prefix and _real_dir(sibling)
    )
    link.unlink()
    if versions:
        link.symlink_to(versions[-1][1])


def _resolved_strategy(folder: Path) -> dict[str, Any] | None:
    import yaml

    try:
        document = yaml.safe_load((folder / "strategy.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    resolved = document.get("resolved") if isinstance(document, dict) else None
    return resolved if isinstance(resolved, dict) else None


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


class _Chunks(io.RawIOBase):
    """A write-only stream whose bytes are taken out as they are written."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        chunk = b"".join(self._parts)
        self._parts.clear()
        return chunk


def model_owners(service: SessionService) -> dict[Path, str]:
    """The model folder (resolved) of each completed training of ``service``, and its id."""
    models_dir = service.settings.models_dir
    owners: dict[Path, str] = {}
    offset = 0
    while True:
        views, total = service.list(SessionStatus.COMPLETED, limit=500, offset=offset)
        for view in views:
            if view.model_path:
                path = Path(view.model_path)
                folder = path if path.is_absolute() else models_dir / path
                owners[folder.resolve()] = view.training_id
        offset += len(views)
        if not views or offset >= total:
            return owners


def delete_model(
    models_dir: Path, model: ModelFolder, owners: dict[Path, str], *, force: bool
) -> ModelDeleted:
    """Remove ``model`` unless a training that exists names it (then only with ``force``).

    Raises:
        ModelInUseError: a training names it and ``force`` is false.
    """
    named_by = [training for folder, training in owners.items() if folder == model.folder]
    if named_by and not force:
        raise ModelInUseError(model.model_id, named_by)
    removed = delete_model_folder(models_dir, model)
    return ModelDeleted(model_id=model.model_id, files_removed=removed)
