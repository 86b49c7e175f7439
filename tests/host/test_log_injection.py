"""No request can forge a line of the service's or a training's log (issue 23, finding 8).

Before: a strategy key holding a newline was logged as is ("ignoring keys the engine does
not use: ..."), so what followed the newline stood in the service log as a line of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.servers import HostServiceProcess
from tests.host.conftest import wait_for_status

FORGED = "2026-01-01 00:00:00,000 WARNING training_host: operator approved transfer"


def forging_strategy(strategies_dir: Path) -> dict[str, Any]:
    strategy: dict[str, Any] = yaml.safe_load((strategies_dir / "momentum_mlp.yaml").read_text())
    strategy["model"]["training"]["epochs"] = 1
    strategy[f"note\n{FORGED}\x1b[2K"] = "ignored"
    return strategy


@pytest.mark.slow
def test_a_newline_in_a_strategy_key_stays_inside_its_log_line(
    host_service: HostServiceProcess, strategies_dir: Path
) -> None:
    body = {"strategy": forging_strategy(strategies_dir), "training_id": "forger"}
    with httpx.Client(base_url=host_service.url, timeout=30.0) as client:
        assert client.post("/trainings/start", json=body).status_code == 202
        wait_for_status(client, "forger", {"completed"})
        training_log = client.get("/trainings/forger/logs").text
    service_log = host_service.log_tail(2000)

    # The service logs the ignored key at the start; the escaped key stays on that line.
    assert any(f"note\\n{FORGED}\\x1b[2K" in line for line in service_log.splitlines())
    for log in (service_log, training_log):
        assert not any(line.startswith(FORGED) for line in log.splitlines())
        assert "\x1b" not in log
