"""Settings: YAML defaults, environment overrides, path resolution, the CLI's refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from training_host.config import Settings


def test_yaml_file_supplies_defaults_and_env_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "host.yaml"
    config.write_text("port: 6001\nmax_concurrent_jobs: 3\ndefault_strategy: other\n")
    monkeypatch.setenv("TRAINING_HOST_CONFIG_FILE", str(config))
    monkeypatch.setenv("TRAINING_HOST_MAX_CONCURRENT_JOBS", "2")

    settings = Settings()

    assert settings.port == 6001
    assert settings.max_concurrent_jobs == 2
    assert settings.default_strategy == "other"


def test_relative_paths_resolve_against_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINING_HOST_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("TRAINING_HOST_MODELS_DIR", "out/models")

    settings = Settings()

    assert settings.models_dir == tmp_path / "out" / "models"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'training_host.db'}"
    assert settings.runtime_settings().models_dir == tmp_path / "out" / "models"


def test_shipped_config_file_matches_built_in_defaults(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("TRAINING_HOST_CONFIG_FILE", "config/training_host_service.yaml")
    from_file = Settings()
    monkeypatch.setenv("TRAINING_HOST_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    built_in = Settings()

    assert from_file.model_dump() == built_in.model_dump()
    assert from_file.host == "127.0.0.1"
    assert from_file.port == 5002


def test_serve_refuses_public_address_without_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training_host", "--host", "0.0.0.0", "--port", "5999"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRAINING_HOST_STATE_DIR": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 2
    assert "without an API token" in result.stderr


def test_invalid_setting_is_reported_not_raised(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training_host"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRAINING_HOST_PORT": "not-a-port"},
        check=False,
    )
    assert result.returncode == 2
    assert "port" in result.stderr
    assert "Traceback" not in result.stderr


def test_home_holds_every_folder_and_a_folder_set_alone_still_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "host.yaml"
    config.write_text("data_dir: from-the-file\nlog_dir: logs-from-the-file\n")
    monkeypatch.setenv("TRAINING_HOST_CONFIG_FILE", str(config))
    monkeypatch.setenv("TRAINING_HOST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAINING_HOST_MODELS_DIR", str(tmp_path / "elsewhere"))

    from_env = Settings()
    from_argument = Settings(home=tmp_path / "other")

    home = tmp_path / "home"
    assert from_env.state_dir == home / "state"
    assert from_env.database_url == f"sqlite:///{home / 'state' / 'training_host.db'}"
    assert from_env.data_dir == home / "data"  # the home beats the config file
    assert from_env.log_dir == home / "logs"
    assert from_env.strategies_dir == home / "strategies"
    assert from_env.checkpoints_dir == home / "checkpoints"
    assert from_env.models_dir == tmp_path / "elsewhere"  # its own variable beats the home
    assert from_argument.data_dir == tmp_path / "other" / "data"
