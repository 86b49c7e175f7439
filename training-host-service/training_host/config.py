"""The host service's one settings class.

Precedence, highest first: arguments passed to ``Settings(...)``, environment
variables prefixed ``TRAINING_HOST_``, the YAML file named by
``TRAINING_HOST_CONFIG_FILE`` (default ``config/training_host_service.yaml``),
then the defaults below. Relative paths are resolved against the working directory.

``home`` (``--home DIR`` or ``TRAINING_HOST_HOME``) puts every folder the service
uses under one directory (:data:`HOME_LAYOUT`); a folder set on its own still wins.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from training_engine.ceilings import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LAYER_COUNT,
    MAX_LAYER_WIDTH,
    MAX_LOOKBACK,
    Ceilings,
)
from training_sessions.http.auth import ApiToken, ClientNetworks, NameList
from training_sessions.http.body_limit import DEFAULT_MAX_BODY_BYTES
from training_sessions.http.host_names import served_host_names
from training_sessions.types import RuntimeSettings, WorkerStart

CONFIG_FILE_ENV = "TRAINING_HOST_CONFIG_FILE"
# The name a backend in Docker reaches this host by (docker-compose.yml's extra_hosts).
DOCKER_HOST_NAME = "host.docker.internal"
HOME_ENV = "TRAINING_HOST_HOME"
DEFAULT_CONFIG_FILE = Path("config/training_host_service.yaml")
_PATH_FIELDS = (
    "state_dir",
    "data_dir",
    "models_dir",
    "strategies_dir",
    "checkpoints_dir",
    "log_dir",
)


_CEILINGS = Ceilings()

# Where each folder goes under ``home``.
HOME_LAYOUT: dict[str, str] = {
    "state_dir": "state",
    "data_dir": "data",
    "models_dir": "models",
    "strategies_dir": "strategies",
    "checkpoints_dir": "checkpoints",
    "log_dir": "logs",
}


def config_file_path() -> Path:
    """The YAML file defaults are read from (it may not exist: then only built-ins apply)."""
    return Path(os.environ.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE)


class Settings(BaseSettings):
    """Everything the training host service can be configured with."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_HOST_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=5002, ge=1, le=65535)
    home: Path | None = Field(
        default=None, description="one folder for state, data, models, checkpoints, logs, ..."
    )
    state_dir: Path = Path("state")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means an SQLite file in state_dir"
    )
    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    strategies_dir: Path = Path("config/strategies")
    checkpoints_dir: Path = Path("checkpoints")
    log_dir: Path = Path("logs")
    max_concurrent_jobs: int = Field(
        default=1, ge=1, description="sessions run at once (with ray: submitted to the cluster)"
    )
    worker_max_sessions: int = Field(
        default=20, ge=1, description="sessions a warm worker process runs before it is replaced"
    )
    data_cache_bytes: int = Field(
        default=536_870_912, ge=0, description="prepared data each warm worker keeps for reuse"
    )
    worker_start: WorkerStart = Field(
        default="auto",
        description=(
            "how worker processes start: auto (forked from a fork server that imported "
            "torch once, on Linux; spawned elsewhere), spawn or forkserver"
        ),
    )
    max_queue_size: int = Field(default=16, ge=0)
    stop_grace_seconds: float = Field(default=30.0, gt=0)
    resume_interrupted: bool = True
    api_token: ApiToken = None
    default_strategy: str = "momentum_mlp"
    default_device: str = "auto"
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    # Ceilings on what a start may ask for (training_engine.ceilings): past one, 422.
    max_hidden_width: int = Field(
        default=_CEILINGS.hidden_width, ge=1, le=MAX_LAYER_WIDTH, description="units per layer"
    )
    max_hidden_layers: int = Field(
        default=_CEILINGS.hidden_layers,
        ge=1,
        le=MAX_LAYER_COUNT,
        description="hidden layers, and stacked recurrent or transformer layers",
    )
    max_lookback: int = Field(
        default=_CEILINGS.lookback, ge=1, le=MAX_LOOKBACK, description="bars a sample sees"
    )
    max_parameters: int = Field(
        default=_CEILINGS.parameters, ge=1, description="weights and biases of the network"
    )
    max_epochs: int = Field(default=_CEILINGS.epochs, ge=1, le=MAX_EPOCHS)
    max_batch_size: int = Field(default=_CEILINGS.batch_size, ge=1, le=MAX_BATCH_SIZE)
    # docs/benchmarks.md: what a host holds with a status read still in milliseconds.
    max_event_streams: int = Field(
        default=512,
        ge=1,
        description="event streams open at once; more are refused with 429 and Retry-After",
    )
    # A backend relays all its clients' streams as one client: this admits its whole limit.
    max_event_streams_per_client: int = Field(
        default=256,
        ge=1,
        description="event streams one client address may hold (a backend in front is one)",
    )
    # /health/detailed says "degraded" when models_dir's disk has less free space than this.
    min_free_disk_bytes: int = Field(default=536_870_912, ge=0)
    log_level: str = "info"
    # Where sessions run (docs/cluster.md): worker processes here, or a Ray cluster's nodes.
    executor: Literal["local", "ray"] = "local"
    ray_address: str = Field(
        default="auto", description="auto, host:6379 (the head's GCS) or ray://host:10001"
    )
    ray_namespace: str = Field(default="training-host", min_length=1)
    gpus_per_session: float = Field(
        default=1.0, ge=0, description="GPUs a session asks of Ray; 0.25 packs four on one GPU"
    )
    cpus_per_session: float | None = Field(
        default=None,
        ge=0,
        description="cores a session uses: its worker's torch threads (at least 1; unset: "
        "cores / max_concurrent_jobs) and, with ray, the CPUs it asks of Ray (unset: 1)",
    )
    # KTRDR since 2025-11-10 dispatches to registered workers (docs/ktrdr.md).
    ktrdr_backend_url: str | None = Field(
        default=None, description="KTRDR backend to register with as a training worker"
    )
    ktrdr_worker_id: str | None = Field(
        default=None, description="worker id; empty: training-host-<8 hex>, new each start"
    )
    ktrdr_worker_endpoint_url: str | None = Field(
        default=None, description="URL the backend reaches this host at; empty: http://host:port"
    )
    ktrdr_registration_check_seconds: float = Field(default=10.0, gt=0)
    ktrdr_clients: ClientNetworks = Field(
        default_factory=list,
        description="addresses or networks (KTRDR's backend) whose calls to KTRDR's routes need "
        "no api_token; they see and act on the trainings started through those routes only",
    )
    ktrdr_routes_without_token: bool = Field(
        default=False, description="removed: it opened every training; list ktrdr_clients instead"
    )
    allowed_hosts: NameList = Field(
        default_factory=list,
        description="Host header names accepted besides localhost, host.docker.internal, the "
        "bind address's and ktrdr_worker_endpoint_url's (IP addresses always are); '*': any",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file_path())
        home_source = _HomeLayoutSource(settings_cls, init_settings)
        # A folder set by argument or variable beats the home's; the home beats the file's.
        return (init_settings, env_settings, home_source, yaml_source)

    @field_validator(*_PATH_FIELDS, "home", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("log_level", mode="after")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"critical", "error", "warning", "info", "debug", "trace"}:
            raise ValueError(f"unknown log level '{value}'")
        return level

    @field_validator("ktrdr_routes_without_token", mode="after")
    @classmethod
    def _removed_opening(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "ktrdr_routes_without_token was removed (it opened every training to anyone); "
                "list the KTRDR backend's address in ktrdr_clients instead (docs/ktrdr.md)"
            )
        return value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.state_dir / 'training_host.db'}"
        return self

    def host_names(self) -> frozenset[str]:
        """The names the Host header may carry (the backend in Docker: host.docker.internal)."""
        return served_host_names(
            self.host,
            [DOCKER_HOST_NAME, *self.allowed_hosts],
            self.ktrdr_worker_endpoint_url,
        )

    def runtime_settings(self) -> RuntimeSettings:
        """The plain settings the engine's session runtime takes."""
        return RuntimeSettings(
            database_url=self.database_url,
            data_dir=self.data_dir,
            models_dir=self.models_dir,
            strategies_dir=self.strategies_dir,
            checkpoints_dir=self.checkpoints_dir,
            default_strategy=self.default_strategy,
            default_device=self.default_device,
            max_concurrent_jobs=self.max_concurrent_jobs,
            max_queue_size=self.max_queue_size,
            stop_grace_seconds=self.stop_grace_seconds,
            resume_interrupted=self.resume_interrupted,
            log_dir=self.log_dir / "trainings",
            cpus_per_session=self.cpus_per_session,
            worker_max_sessions=self.worker_max_sessions,
            data_cache_bytes=self.data_cache_bytes,
            worker_start=self.worker_start,
            ceilings=self.ceilings(),
        )

    def ceilings(self) -> Ceilings:
        """The largest sizes a start may ask for (the ``max_*`` settings)."""
        return Ceilings(
            hidden_width=self.max_hidden_width,
            hidden_layers=self.max_hidden_layers,
            lookback=self.max_lookback,
            parameters=self.max_parameters,
            epochs=self.max_epochs,
            batch_size=self.max_batch_size,
        )

    def directories(self) -> dict[str, Path]:
        """The service's folders by setting name (kept out of error answers)."""
        return {name: getattr(self, name) for name in _PATH_FIELDS}

    def ensure_directories(self) -> None:
        """Create the directories the service writes to."""
        for path in (self.state_dir, self.models_dir, self.checkpoints_dir, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)


class _HomeLayoutSource(PydanticBaseSettingsSource):
    """Every folder under ``home`` (an argument or TRAINING_HOST_HOME), per HOME_LAYOUT."""

    def __init__(
        self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        init_kwargs = (
            init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        )
        self._home = init_kwargs.get("home") or os.environ.get(HOME_ENV) or None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for all fields at once

    def __call__(self) -> dict[str, Any]:
        if self._home is None:
            return {}
        home = Path(self._home).expanduser()
        return {field: home / name for field, name in HOME_LAYOUT.items()}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment and config file, read once (tests pass their own)."""
    return Settings()
