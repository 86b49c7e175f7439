"""The executor setting: the local one needs no Ray; ``ray`` without Ray says what is missing.

Each test runs the host as its own process where ``import ray`` fails: a
``sitecustomize`` module (on ``PYTHONPATH``, so the workers load it too) blocks the
import and notes every attempt in a file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import find_free_port
from tests.fixtures.servers import host_service_env, run_host_service
from tests.fixtures.waiting import wait_until
from tests.host.conftest import FINAL, QUICK_BODY

pytestmark = pytest.mark.slow

RAY_BLOCKER = """
import os, sys

class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            with open(os.environ["RAY_IMPORT_ATTEMPTS"], "a") as attempts:
                attempts.write(f"{os.getpid()} {name}\\n")
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, _NoRay())
"""


def _without_ray(tmp_path: Path) -> tuple[dict[str, str], Path]:
    blocker = tmp_path / "no-ray"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(RAY_BLOCKER)
    attempts = tmp_path / "ray-import-attempts.txt"
    path = os.pathsep.join(p for p in (str(blocker), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "RAY_IMPORT_ATTEMPTS": str(attempts)}, attempts


def test_local_executor_serves_and_trains_with_ray_not_importable(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    env, attempts = _without_ray(tmp_path)
    with run_host_service(tmp_path / "host", find_free_port(), env, sample_data_dir) as host:
        started = httpx.post(f"{host.url}/trainings/start", json=QUICK_BODY, timeout=30)
        assert started.status_code == 202, started.text
        training_id = started.json()["training_id"]

        def final() -> dict[str, object] | None:
            body = httpx.get(f"{host.url}/trainings/{training_id}/status", timeout=10).json()
            return body if body["status"] in FINAL else None

        done = wait_until(final, 240, "the training final")
    assert done["status"] == "completed", done
    assert not attempts.exists(), attempts.read_text()  # nothing even tried to import ray


def test_ray_executor_without_ray_refuses_to_start_and_names_the_extra(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    env, _ = _without_ray(tmp_path)
    port = find_free_port()
    environment = host_service_env(tmp_path, port, sample_data_dir, env)
    environment["TRAINING_HOST_EXECUTOR"] = "ray"
    finished = subprocess.run(
        [sys.executable, "-m", "training_host", "serve"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert "executor 'ray' needs Ray installed (pip install '.[ray]')" in finished.stderr
    assert "Traceback" not in finished.stderr
