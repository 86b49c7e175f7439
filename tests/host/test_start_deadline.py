"""``start_deadline``: the host creates nothing from a start it reads after that instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures.servers import HostServiceProcess
from tests.host.conftest import QUICK_BODY

pytestmark = pytest.mark.slow


def test_a_start_read_after_its_deadline_creates_nothing(host_service: HostServiceProcess) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    body = {**QUICK_BODY, "training_id": "late-start"}
    with httpx.Client(base_url=host_service.url, timeout=30) as client:
        late = client.post("/trainings/start", json={**body, "start_deadline": past})
        absent = client.get("/trainings/late-start/status")
        in_time = client.post("/trainings/start", json={**body, "start_deadline": future})
        # A repeat after the deadline answers with the training it already has.
        repeat = client.post("/trainings/start", json={**body, "start_deadline": past})
        stop = client.post("/trainings/late-start/stop")

    assert late.status_code == 409, late.text
    assert late.json()["error"] == "StartDeadlinePassedError"
    assert "start_deadline" in late.json()["detail"]
    assert absent.status_code == 404
    assert in_time.status_code == 202, in_time.text
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["created"] is False
    assert stop.status_code == 200
