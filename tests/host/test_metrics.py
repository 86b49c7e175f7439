"""``/metrics`` of the real host service process: sessions counted from the database."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from training_host import __version__

from tests.fixtures.servers import run_host_service
from tests.host.conftest import QUICK_BODY, wait_for_progress, wait_for_status

pytestmark = pytest.mark.slow

LONG_BODY = {**QUICK_BODY, "config": {"epochs": 300, "early_stopping": {"enabled": False}}}


def session_gauges(text: str) -> dict[str, float]:
    pattern = r'^training_host_sessions\{status="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, flags=re.MULTILINE)}


def test_session_counts_come_from_the_database_after_a_restart(
    tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    with run_host_service(tmp_path, free_port, data_dir=sample_data_dir) as service:
        client = httpx.Client(base_url=service.url, timeout=30)
        done = client.post("/trainings/start", json={**QUICK_BODY, "training_id": "m-done"})
        assert done.status_code == 202, done.text
        wait_for_status(client, "m-done", {"completed"}, timeout=180)
        client.post("/trainings/start", json={**LONG_BODY, "training_id": "m-long"})
        wait_for_progress(client, "m-long", 1)

        service.kill()  # kill -9: no shutdown, the runtime's counts die with it
        service.restart()
        right_after = session_gauges(client.get("/metrics").text)
        client.post("/trainings/m-long/stop")
        wait_for_status(client, "m-long", {"cancelled"}, timeout=120)
        later = client.get("/metrics").text

    assert all(value >= 0 for value in right_after.values()), right_after
    assert right_after["completed"] == 1
    # The killed training is resumed (queued or running again) by the restart.
    assert right_after["running"] + right_after["queued"] == 1
    assert sum(right_after.values()) == 2
    assert session_gauges(later) == {
        "queued": 0,
        "running": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 1,
        "interrupted": 0,
    }
    build = re.search(r"^training_host_build_info\{(.*)\} 1\.0$", later, flags=re.MULTILINE)
    assert build is not None and f'version="{__version__}"' in build[1]
    assert 'torch_version="' in build[1] and 'python_version="' in build[1]
