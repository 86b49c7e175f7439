"""Settings: the variable names backends already use, the YAML file, and precedence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from backend_proxy.cli import main
from backend_proxy.config import Settings
from fastapi import FastAPI


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USE_TRAINING_HOST_SERVICE", "TRAINING_HOST_SERVICE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_shipped_yaml_sets_the_documented_defaults(repo_root: Path) -> None:
    path = repo_root / "config" / "environment" / "training_host_service_enabled.yaml"

    settings = Settings(host_service_config_file=path)

    assert settings.use_training_host_service is True
    assert settings.training_host_service_url == "http://host.docker.internal:5002"
    assert settings.host_timeout_seconds == 30
    assert settings.health_check_interval_seconds == 10
    assert settings.breaker_failure_threshold == 3
    assert settings.breaker_recovery_timeout_seconds == 60


def test_environment_overrides_yaml_with_backend_names(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "BACKEND_HOST_SERVICE_CONFIG_FILE",
        str(repo_root / "config" / "environment" / "training_host_service_enabled.yaml"),
    )
    monkeypatch.setenv("USE_TRAINING_HOST_SERVICE", "false")
    monkeypatch.setenv("TRAINING_HOST_SERVICE_URL", "http://127.0.0.1:5999")
    monkeypatch.setenv("BACKEND_BREAKER_FAILURE_THRESHOLD", "5")
    monkeypatch.setenv("BACKEND_LOCAL_MAX_CONCURRENT_JOBS", "2")
    monkeypatch.setenv("BACKEND_FALLBACK_ON_HOST_AT_CAPACITY", "true")

    settings = Settings()

    assert settings.use_training_host_service is False
    assert settings.training_host_service_url == "http://127.0.0.1:5999"
    assert settings.breaker_failure_threshold == 5
    assert settings.breaker_recovery_timeout_seconds == 60  # from the file
    assert settings.runtime_settings().max_concurrent_jobs == 2
    assert settings.runtime_settings().default_device == "cpu"
    assert settings.fallback_on_host_at_capacity is True


def test_missing_yaml_file_leaves_defaults(tmp_path: Path) -> None:
    settings = Settings(host_service_config_file=tmp_path / "nope.yaml")

    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.local_max_concurrent_jobs == 1
    assert settings.fallback_on_host_at_capacity is False
    assert settings.database_url.startswith("sqlite")


def test_serve_with_bad_port_exits_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "port" in capsys.readouterr().err


def test_help_explains_the_command(repo_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend_proxy", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=repo_root,
        check=True,
    )
    assert "--port" in result.stdout
    assert "BACKEND_PORT" in result.stdout


def test_env_example_names_only_real_settings(repo_root: Path) -> None:
    lines = (repo_root / "config" / "backend.env.example").read_text().splitlines()
    keys = {
        line.lstrip("#").split("=", 1)[0]
        for line in lines
        if "=" in line and line.lstrip("#").split("=", 1)[0].isupper()
    }
    fields = {"USE_TRAINING_HOST_SERVICE", "TRAINING_HOST_SERVICE_URL"} | {
        f"BACKEND_{name.upper()}" for name in Settings.model_fields
    }
    # Variables only docker-compose.yml reads from the same .env file.
    compose_text = (repo_root / "docker-compose.yml").read_text()
    compose_variables = {key for key in keys - fields if f"${{{key}:" in compose_text}

    assert keys, "no KEY=value lines found"
    assert compose_variables == {"POSTGRES_PASSWORD"}
    assert keys <= fields | compose_variables, f"not settings: {sorted(keys - fields)}"


def test_public_surface_is_pinned() -> None:
    import backend_proxy

    assert sorted(backend_proxy.__all__) == [
        "ProxyRuntime",
        "Settings",
        "create_app",
        "create_training_router",
        "get_settings",
        "install_error_handlers",
        "proxy_runtime",
    ]
    app = FastAPI()
    app.include_router(backend_proxy.create_training_router())
    paths = set(app.openapi()["paths"])
    assert "/api/trainings/start" in paths
    assert "/api/trainings/{training_id}/stop" in paths
    assert "/api/training-host/status" in paths
