"""The rendered systemd unit's ExecStart, run as systemd would run it, serves /health."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path

import httpx
import pytest
from training_host import service_install
from training_host.service_install import ServiceSpec

from tests.fixtures.servers import run_service


def unit_settings(text: str) -> dict[str, str]:
    """The unit's KEY=value lines (comments dropped; the last one of a key wins)."""
    settings: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


@pytest.mark.slow
def test_rendered_unit_start_command_serves_health(
    tmp_path: Path, repo_root: Path, free_port: int
) -> None:
    env_file = tmp_path / "training_host.env"
    env_file.write_text(
        "# what an operator would put in ~/.config/training-host/training_host.env\n"
        f"TRAINING_HOST_PORT={free_port}\n"
        f"TRAINING_HOST_STATE_DIR={tmp_path / 'state'}\n"
        f"TRAINING_HOST_MODELS_DIR={tmp_path / 'models'}\n"
        f"TRAINING_HOST_CHECKPOINTS_DIR={tmp_path / 'checkpoints'}\n"
        f"TRAINING_HOST_LOG_DIR={tmp_path / 'logs'}\n"
        f"TRAINING_HOST_DATA_DIR={tmp_path / 'data'}\n"
        "TRAINING_HOST_DEFAULT_DEVICE=cpu\n"
    )
    spec = ServiceSpec(
        init_system="systemd",
        name="training-host",
        python=Path(sys.executable),
        working_dir=repo_root,
        env_file=env_file,
        log_dir=None,
        target_dir=tmp_path,
    )
    unit = unit_settings(service_install.render(spec))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_HOST_")}
    environment.update(dict([unit["Environment"].split("=", 1)]))
    environment.update(service_install.read_env_file(Path(unit["EnvironmentFile"].lstrip("-"))))

    # run_service stops it as systemd does (KillSignal=SIGTERM to the main process).
    with run_service(
        shlex.split(unit["ExecStart"]),
        free_port,
        environment,
        tmp_path / "unit.log",
        cwd=Path(unit["WorkingDirectory"]),
        startup_timeout=120.0,
    ) as service:
        assert httpx.get(f"{service.url}/health", timeout=5).status_code == 200
    assert service.process.returncode in (0, -signal.SIGTERM), service.log_tail()
