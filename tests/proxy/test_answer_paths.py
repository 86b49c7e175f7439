"""Paths in the backend's answers are relative to their settings (issue 23, finding 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_proxy.config import Settings
from training_engine.artifacts import load_trained_model

from tests.proxy.conftest import SMALL_TRAINING, run_backend, wait_for_status

pytestmark = pytest.mark.slow


def test_a_local_training_reports_its_model_relative_to_models_dir(
    proxy_settings: Settings, tmp_path: Path
) -> None:
    local = proxy_settings.model_copy(update={"use_training_host_service": False})
    with run_backend(local) as backend:
        started = backend.post("/api/trainings/start", json=SMALL_TRAINING)
        assert started.status_code == 202, started.text
        training_id = started.json()["training_id"]
        final = wait_for_status(backend, training_id, {"completed"})
        answers = [
            backend.get(path).text
            for path in ("/api/trainings", f"/api/trainings/{training_id}/events")
        ]

    assert final["routed_to"] == "local"
    assert final["model_path"].startswith("momentum_mlp/")
    assert final["checkpoint_path"] == f"{training_id}.ckpt"
    assert load_trained_model(local.models_dir / final["model_path"]) is not None
    assert all(str(tmp_path) not in answer for answer in answers)
