"""The one summary the service logs when it has started: what it runs with."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from training_engine.device import resolve_device
from training_engine.errors import DeviceUnavailableError

from training_host.config import Settings, config_file_path


def startup_summary(settings: Settings, sessions_resumed: int) -> str:
    """Config file, database (no password), data and strategy folders, device, resumed count."""
    config_file = config_file_path()
    config = (
        f"config file {config_file.resolve()}"
        if config_file.is_file()
        else f"no config file (looked for {config_file.resolve()})"
    )
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        device = str(resolve_device(settings.default_device))
    except DeviceUnavailableError as exc:
        device = f"unavailable ({exc})"
    parts = [
        config,
        f"database {database}",
        f"data {settings.data_dir} ({_count_files(settings.data_dir, '*')} files)",
        f"strategies {settings.strategies_dir} "
        f"({_count_files(settings.strategies_dir, '*.yaml')} files)",
        f"device {device}",
        f"sessions resumed {sessions_resumed}",
    ]
    return "; ".join(parts)


def _count_files(folder: Path, pattern: str) -> str:
    if not folder.is_dir():
        return "missing"
    return str(sum(1 for path in folder.rglob(pattern) if path.is_file()))
