"""The backend's one settings class.

Precedence, highest first: arguments, environment variables, the YAML file
``config/environment/training_host_service_enabled.yaml`` (its path is
``BACKEND_HOST_SERVICE_CONFIG_FILE``), then the defaults below. The two
variables backends already use, ``USE_TRAINING_HOST_SERVICE`` and
``TRAINING_HOST_SERVICE_URL``, keep their names; everything else is ``BACKEND_*``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, Field
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from training_sessions.http.auth import ApiToken, NameList
from training_sessions.http.body_limit import DEFAULT_MAX_BODY_BYTES
from training_sessions.http.host_names import served_host_names
from training_sessions.types import RuntimeSettings, WorkerStart

DEFAULT_HOST_SERVICE_CONFIG_FILE = Path("config/environment/training_host_service_enabled.yaml")

# YAML key path -> settings field; the file keeps the key names the KTRDR config used.
_YAML_KEYS: dict[tuple[str, ...], str] = {
    ("enabled",): "use_training_host_service",
    ("url",): "training_host_service_url",
    ("timeout_seconds",): "host_timeout_seconds",
    ("health_check_interval",): "health_check_interval_seconds",
    ("circuit_breaker", "failure_threshold"): "breaker_failure_threshold",
    ("circuit_breaker", "recovery_timeout_seconds"): "breaker_recovery_timeout_seconds",
}


class Settings(BaseSettings):
    """Where the host service is, how hard to try it, and how to train locally."""

    model_config = SettingsConfigDict(env_prefix="BACKEND_", extra="ignore", populate_by_name=True)

    use_training_host_service: bool = Field(
        default=True,
        validation_alias=AliasChoices("USE_TRAINING_HOST_SERVICE", "use_training_host_service"),
        description="false: every training runs locally on CPU.",
    )
    training_host_service_url: str = Field(
        default="http://127.0.0.1:5002",
        validation_alias=AliasChoices("TRAINING_HOST_SERVICE_URL", "training_host_service_url"),
    )
    host_service_config_file: Path = DEFAULT_HOST_SERVICE_CONFIG_FILE
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str = "sqlite:///backend_proxy.sqlite3"
    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    strategies_dir: Path = Path("config/strategies")
    checkpoints_dir: Path = Path("checkpoints")
    log_dir: Path = Field(default=Path("logs"), description="local trainings' logs")
    host_api_token: str | None = None
    api_token: ApiToken = Field(
        default=None,
        description="BACKEND_API_TOKEN: bearer token of the /api routes; required off loopback.",
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    allowed_hosts: NameList = Field(
        default_factory=list,
        description="BACKEND_ALLOWED_HOSTS: Host header names accepted besides localhost and the "
        "bind address's (IP addresses always are); '*': any",
    )
    breaker_failure_threshold: int = Field(default=3, ge=1)
    breaker_recovery_timeout_seconds: float = Field(default=60.0, gt=0)
    health_check_interval_seconds: float = Field(default=10.0, gt=0)
    host_timeout_seconds: float = Field(default=30.0, gt=0)
    host_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    host_max_connections: int = Field(
        default=100,
        ge=1,
        description="connections to the host for API calls (event streams have their own pool)",
    )
    max_event_streams: int = Field(
        default=64,
        ge=1,
        description="event streams served at once (host relays and local); also the size of "
        "the streams' own connection pool to the host",
    )
    max_event_streams_per_client: int = Field(
        default=8, ge=1, description="event streams one client address may hold open at once"
    )
    event_stream_retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After of a stream refused past either cap (429)"
    )
    local_max_concurrent_jobs: int = Field(default=1, ge=1)
    local_max_queue_size: int = Field(default=16, ge=0)
    # How the CPU fallback's worker processes start (training_sessions.runners.local).
    local_worker_start: WorkerStart = "auto"
    fallback_on_host_at_capacity: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = _HostServiceYamlSource(settings_cls, init_settings)
        return init_settings, env_settings, dotenv_settings, yaml_source, file_secret_settings

    def host_names(self) -> frozenset[str]:
        """The names the Host header may carry."""
        return served_host_names(self.host, self.allowed_hosts)

    def directories(self) -> dict[str, Path]:
        """The backend's folders by setting name (kept out of error answers)."""
        return {
            "data_dir": self.data_dir,
            "models_dir": self.models_dir,
            "strategies_dir": self.strategies_dir,
            "checkpoints_dir": self.checkpoints_dir,
        }

    def runtime_settings(self) -> RuntimeSettings:
        """The local session runtime's settings: CPU only, the backend's limits."""
        return RuntimeSettings(
            database_url=self.database_url,
            data_dir=self.data_dir,
            models_dir=self.models_dir,
            strategies_dir=self.strategies_dir,
            checkpoints_dir=self.checkpoints_dir,
            log_dir=self.log_dir / "trainings",
            default_device="cpu",
            max_concurrent_jobs=self.local_max_concurrent_jobs,
            max_queue_size=self.local_max_queue_size,
            worker_start=self.local_worker_start,
        )


class _HostServiceYamlSource(PydanticBaseSettingsSource):
    """Reads ``training_host_service:`` from the YAML file; a missing file means no values."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        init_kwargs = (
            init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        )
        # The file's path is itself a setting, so it is looked up before the file is read.
        path = init_kwargs.get("host_service_config_file") or os.environ.get(
            "BACKEND_HOST_SERVICE_CONFIG_FILE", str(DEFAULT_HOST_SERVICE_CONFIG_FILE)
        )
        self._path = Path(path)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns every value at once

    def __call__(self) -> dict[str, Any]:
        if not self._path.is_file():
            return {}
        document = yaml.safe_load(self._path.read_text()) or {}
        section = document.get("training_host_service") or {}
        if not isinstance(section, dict):
            raise ValueError(f"{self._path}: 'training_host_service' must be a mapping")
        values: dict[str, Any] = {}
        for keys, field_name in _YAML_KEYS.items():
            node: Any = section
            for key in keys:
                node = node.get(key) if isinstance(node, dict) else None
            if node is not None:
                values[field_name] = node
        return values


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once; tests pass their own to ``create_app``."""
    return Settings()
