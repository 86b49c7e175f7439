"""Turning a client's :class:`TrainingRequest` into a validated :class:`SessionJob`.

Everything a request can get wrong is checked here, before a session is
accepted, so clients hear about it at once (HTTP 422) rather than from a failed
worker: the strategy name, the strategy itself, the overrides, the device, the
dates and the data files. This runs once per session: the job is stored and
every launch or resume trains the stored job (:func:`build_job`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
from training_engine.ceiling_check import check_ceilings
from training_engine.context_data import check_context_files
from training_engine.data import find_data_file, parse_date_bound
from training_engine.device import resolve_device
from training_engine.errors import DataValidationError
from training_engine.job import TrainingJob
from training_engine.paths import path_inside
from training_engine.strategy import (
    STRATEGY_FILE_SUFFIXES,
    StrategyConfig,
    load_strategy,
    parse_strategy,
    with_overrides,
)

from training_sessions.contract import TRAINING_ID_PATTERN
from training_sessions.errors import InvalidRequestError
from training_sessions.session_job import SessionJob
from training_sessions.types import RuntimeSettings, TrainingRequest

# A training id names files (its checkpoint, its log), so its rule is the rule of a safe
# file name; a strategy name, which names a file too, follows the same one.
_SAFE_NAME = re.compile(TRAINING_ID_PATTERN)


def validate_training_id(training_id: str) -> str:
    """A client-chosen id must be safe to use in a file name (it names the checkpoint)."""
    if not isinstance(training_id, str) or not _SAFE_NAME.match(training_id):
        raise InvalidRequestError(
            f"invalid training_id {training_id!r}: use 1-128 letters, digits, '.', '_' or '-'"
        )
    return training_id


def available_strategies(strategies_dir: Path) -> list[str]:
    """Names of the strategy files in the strategies directory, sorted."""
    if not strategies_dir.is_dir():
        return []
    files = (p for p in strategies_dir.iterdir() if p.suffix in STRATEGY_FILE_SUFFIXES)
    return sorted({p.stem for p in files if p.is_file()})


def strategy_file(strategies_dir: Path, name: str) -> Path:
    """The file of a named strategy, refusing anything that could leave the directory.

    Raises:
        InvalidRequestError: the name is unsafe or no such strategy exists.
    """
    stem = name.strip()
    for suffix in STRATEGY_FILE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    if not _SAFE_NAME.match(stem) or ".." in stem:
        raise InvalidRequestError(
            f"invalid strategy name {name!r}: expected a file name in the strategies directory "
            "(letters, digits, '.', '_' or '-'; no paths)"
        )
    for suffix in STRATEGY_FILE_SUFFIXES:
        candidate = path_inside(strategies_dir, f"{stem}{suffix}", what="strategy")
        if candidate.is_file():
            return candidate
    names = ", ".join(available_strategies(strategies_dir)) or "none"
    raise InvalidRequestError(f"unknown strategy '{stem}'; available: {names}")


def _load(settings: RuntimeSettings, strategy: str | dict[str, Any] | None) -> StrategyConfig:
    if strategy is None:
        return load_strategy(strategy_file(settings.strategies_dir, settings.default_strategy))
    if isinstance(strategy, str):
        return load_strategy(strategy_file(settings.strategies_dir, strategy))
    if isinstance(strategy, dict):
        return parse_strategy(strategy, default_name="inline")
    raise InvalidRequestError(
        f"strategy must be a name or a strategy object, got {type(strategy).__name__}"
    )


def _date_bound(value: str | None, key: str, *, end: bool) -> pd.Timestamp | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{key} must be a date string like 2024-01-31")
    try:
        return parse_date_bound(value, key, end=end)
    except DataValidationError as exc:  # a request's date is the request's mistake
        raise InvalidRequestError(str(exc)) from exc


def check_data_files(data_dir: Path, strategy: StrategyConfig) -> None:
    """Every symbol/timeframe pair needs a data file, and every context series its file.

    Raises:
        DataFileNotFoundError: naming the paths looked for.
        UnsafePathError: a context series' id would name a file outside the data folder.
    """
    for symbol in strategy.symbols:
        for timeframe in strategy.timeframes:
            find_data_file(data_dir, symbol, timeframe)
    check_context_files(data_dir, strategy)


def resolve_request(settings: RuntimeSettings, request: TrainingRequest) -> SessionJob:
    """Validate a request and fill in its defaults: the job the session will train.

    The strategy is parsed here, once per session; the device is resolved here and
    pinned in the job, with the seed.

    Raises:
        InvalidRequestError: unsafe or unknown strategy name, bad dates.
        StrategyConfigError: the strategy or an override has a bad key or value, or asks
            for more than the service's ceilings allow.
        DeviceUnavailableError: the requested device does not exist here.
        DataFileNotFoundError: a data file is missing.
    """
    strategy = _load(settings, request.strategy)
    overrides = dict(request.config)
    if "device" not in overrides and strategy.training.device == "auto":
        overrides["device"] = settings.default_device
    strategy = with_overrides(
        strategy,
        training=overrides,
        symbols=request.symbols,
        timeframes=request.timeframes,
    )
    if not strategy.symbols:
        raise InvalidRequestError(
            "no symbols: the request and the strategy's training_data name none"
        )
    check_ceilings(strategy, settings.ceilings, request.config)
    device = resolve_device(strategy.training.device)
    start = _date_bound(request.start_date, "start_date", end=False)
    end = _date_bound(request.end_date, "end_date", end=True)
    if start is not None and end is not None and start > end:
        raise InvalidRequestError(
            f"start_date {request.start_date} is after end_date {request.end_date}"
        )
    check_data_files(settings.data_dir, strategy)
    return SessionJob.of(
        with_overrides(strategy, training={"device": str(device)}),
        training={**overrides, "device": str(device), "seed": strategy.training.seed},
        start_date=request.start_date,
        end_date=request.end_date,
    )


def checkpoint_path(settings: RuntimeSettings, training_id: str) -> Path:
    """The one checkpoint file of a session."""
    return path_inside(settings.checkpoints_dir, f"{training_id}.ckpt", what="training_id")


def existing_checkpoint(settings: RuntimeSettings, training_id: str) -> str | None:
    """The session's checkpoint file when one has been written; None otherwise."""
    path = checkpoint_path(settings, training_id)
    return str(path) if path.is_file() else None


def session_log_path(log_dir: Path, training_id: str) -> Path:
    """The log file of a session, resolved inside ``log_dir`` (symlinks too).

    Raises:
        InvalidRequestError: the id is not a safe file name.
        UnsafePathError: the file is a link that leads out of the folder.
    """
    return path_inside(log_dir, f"{validate_training_id(training_id)}.log", what="training log")


def build_job(
    settings: RuntimeSettings, training_id: str, job: SessionJob, *, resume: bool
) -> TrainingJob:
    """What a worker trains: the stored job, in this runtime's folders.

    Resumes from the session's checkpoint when asked and one exists.
    """
    checkpoint = checkpoint_path(settings, training_id)
    return TrainingJob(
        strategy=job.strategy,
        data_dir=settings.data_dir,
        models_dir=settings.models_dir,
        checkpoint_path=checkpoint,
        start_date=job.start_date,
        end_date=job.end_date,
        resume_from=checkpoint if resume and checkpoint.is_file() else None,
    )
