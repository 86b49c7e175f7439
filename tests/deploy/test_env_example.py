"""config/training_host.env.example names only settings the host service has."""

from __future__ import annotations

import re
from pathlib import Path

from training_host.config import Settings
from training_host.service_install import read_env_file


def test_env_example_parses_and_names_only_real_settings(repo_root: Path) -> None:
    path = repo_root / "config" / "training_host.env.example"
    # Commented-out keys are documentation too: they must name real settings.
    keys = set(re.findall(r"^#?(TRAINING_HOST_[A-Z_]+)=", path.read_text(), re.MULTILINE))
    fields = {f"TRAINING_HOST_{name.upper()}" for name in Settings.model_fields}

    assert read_env_file(path) == {"TRAINING_HOST_HOST": "127.0.0.1", "TRAINING_HOST_PORT": "5002"}
    assert len(keys) > 10
    assert keys <= fields, keys - fields
