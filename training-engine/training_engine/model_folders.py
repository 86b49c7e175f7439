"""The one place a completed run's model is written: our folder and KTRDR's copy.

:func:`train` calls :func:`write_model_folders` once per completed run, so the CLI, the
host's workers and the backend's fallback all leave the same two folders::

    {models_dir}/{strategy}/{SYMBOLS}_{timeframe}_v{N}/         ours (``artifacts``)
    {models_dir}/ktrdr/{strategy}/{SYMBOLS}_{timeframe}_v{N}/   KTRDR's (``ktrdr_export``)

Both are written from the model and data the run holds in memory (nothing is loaded or
prepared again), each with the one version allocator, into a staging folder renamed into
place (``atomic_files.write_new_version``). KTRDR's copy comes first so that our folder's
``ktrdr_export.json`` can name it. A failure there is logged and recorded in the result
(``ktrdr_error``) and our folder is written all the same; a failure writing ours fails the
run and removes KTRDR's copy of it, so no model is left without its run. KTRDR's
``latest`` link moves last, when both are in place. A model KTRDR's backtester cannot run
as trained (a transformer, ...: ``ktrdr_export``) is still copied, and the result says why
(``ktrdr_unsupported``).
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from training_engine.artifacts import artifact_parent, artifact_prefix, write_artifact_files
from training_engine.atomic_files import write_new_version
from training_engine.dataset import PreparedDataset
from training_engine.job import TrainingResult
from training_engine.ktrdr_export import (
    ktrdr_summary,
    point_latest,
    write_ktrdr_folder,
    write_summary,
)
from training_engine.strategy import StrategyConfig

logger = logging.getLogger(__name__)


MODEL_ID_LENGTH = 128


def new_model_id(strategy_name: str, folder_name: str) -> str:
    """``{strategy}.{SYMBOLS}_{timeframe}_v{N}.{8 hex}``: readable, and unique by its random
    end (two services' ``AAPL_1h_v1`` never share an id); at most 128 path-safe characters."""
    readable = f"{strategy_name}.{folder_name}"[: MODEL_ID_LENGTH - 9]
    return f"{readable}.{secrets.token_hex(4)}"


def write_model_folders(
    models_dir: Path,
    strategy: StrategyConfig,
    model: nn.Module,
    data: PreparedDataset,
    result: TrainingResult,
) -> None:
    """Write our model folder and KTRDR's copy of a completed run, each atomically.

    Sets ``result.model_path``, ``result.ktrdr_model_path`` or ``result.ktrdr_error``, and
    ``result.ktrdr_unsupported`` when KTRDR's backtester cannot run the model.

    Args:
        models_dir: the root of all model folders.
        strategy: the resolved strategy that was trained.
        model: the trained model (the weights evaluated, in memory).
        data: what it was trained on (feature names in order, normalisation, shape).
        result: the completed run's result, with its test metrics and ``part_scores``.

    Raises:
        ValueError: the run did not complete.
        OSError, UnsafePathError: our folder could not be written.
    """
    if result.status != "completed":
        raise ValueError("only a completed run's model is written")
    summary: dict[str, Any] | None = None
    ktrdr_path: Path | None = None
    error: str | None = None
    try:
        summary = ktrdr_summary(strategy, model, data, result)
        ktrdr_path = write_ktrdr_folder(models_dir, strategy, model, data, summary)
    except Exception as exc:  # whatever KTRDR's copy meets, our own folder is still written
        error = f"{type(exc).__name__}: {exc}"
        logger.warning("KTRDR's copy of the model was not written: %s", error, exc_info=True)
    if summary is not None:
        summary.update(ktrdr_model_path=str(ktrdr_path) if ktrdr_path else None, ktrdr_error=error)

    prefix = artifact_prefix(data.symbols, data.base_timeframe)

    def write_ours(folder: Path, version: int) -> None:
        model_id = new_model_id(strategy.name, f"{prefix}_v{version}")
        write_artifact_files(folder, strategy, model, data, result, model_id=model_id)
        if summary is not None:
            write_summary(folder, summary)

    try:
        result.model_path = write_new_version(
            artifact_parent(models_dir, strategy), prefix, write_ours
        )
    except BaseException:
        if ktrdr_path is not None:
            shutil.rmtree(ktrdr_path, ignore_errors=True)
        raise
    if ktrdr_path is not None:
        try:
            point_latest(ktrdr_path)
        except OSError as exc:  # a file system without links: the versions are all there
            error = f"its latest link was not moved: {exc}"
            logger.warning("KTRDR's copy of the model is written but %s", error)
    result.ktrdr_model_path, result.ktrdr_error = ktrdr_path, error
    result.ktrdr_unsupported = summary.get("ktrdr_unsupported") if summary else None
