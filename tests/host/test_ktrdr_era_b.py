"""Era B (KTRDR 2025-10-12 to 11-09) against a real host process: inline strategy text,
``/training/result`` and the operations API its proxy pulls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.host.ktrdr_bodies import (
    ERA_B_METRICS_READS,
    ERA_B_OPERATION_READS,
    ERA_B_RESULT_READS,
    ERA_B_START_READS,
    OPERATION_STATUSES,
    era_b_host_operation_id,
    era_b_start_body,
    problems_with,
)
from tests.host.ktrdr_polling import ktrdr_client, ktrdr_host, poll_json

__all__ = ["ktrdr_client", "ktrdr_host"]
pytestmark = pytest.mark.slow

FINAL_OPERATION = {"completed", "failed", "cancelled"}


def strategy_text(strategies_dir: Path, **replacements: str) -> str:
    """The shipped strategy file's text, as a user would have edited it."""
    text = (strategies_dir / "momentum_mlp.yaml").read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


def _start(client: httpx.Client, text: str) -> str:
    response = client.post("/training/start", json=era_b_start_body(text))
    assert response.status_code == 200, response.text
    assert problems_with(response.json(), ERA_B_START_READS) == []
    session_id: str = response.json()["session_id"]
    return session_id


def _check_operation(data: dict[str, Any]) -> None:
    """What KTRDR's backend does with each pulled operation; a refresh that fails it fails."""
    assert problems_with(data, ERA_B_OPERATION_READS) == []
    assert data["status"] in OPERATION_STATUSES
    assert 0.0 <= data["progress"]["percentage"] <= 100.0


def test_inline_strategy_is_trained_and_followed_through_the_operations_api(
    ktrdr_client: httpx.Client, strategies_dir: Path
) -> None:
    files_before = sorted(p.name for p in strategies_dir.iterdir())
    session_id = _start(ktrdr_client, strategy_text(strategies_dir, **{"epochs: 10": "epochs: 2"}))
    operation_path = f"/api/v1/operations/{era_b_host_operation_id(session_id)}"

    answer = poll_json(
        ktrdr_client,
        operation_path,
        lambda a: a["data"]["status"] in FINAL_OPERATION,
        lambda a: _check_operation(a["data"]),
    )
    first = ktrdr_client.get(f"{operation_path}/metrics", params={"cursor": 0}).json()["data"]
    again = ktrdr_client.get(f"{operation_path}/metrics", params={"cursor": 2}).json()["data"]
    by_session_id = ktrdr_client.get(f"/api/v1/operations/{session_id}").json()["data"]
    result = ktrdr_client.get(f"/training/result/{session_id}")

    assert answer["success"] is True
    data = answer["data"]
    assert data["status"] == "completed", data["error_message"]
    assert data["progress"]["percentage"] == 100.0
    assert data["progress"]["steps_completed"] == data["progress"]["steps_total"] == 2
    assert problems_with(first, ERA_B_METRICS_READS) == []
    assert [m["epoch"] for m in first["metrics"]] == [1, 2]
    assert first["new_cursor"] == 2
    assert again["metrics"] == [] and again["new_cursor"] == 2
    assert by_session_id["status"] == "completed"
    assert result.status_code == 200
    assert problems_with(result.json(), ERA_B_RESULT_READS) == []
    assert result.json()["training_metrics"]["epochs_trained"] == 2
    assert result.json()["test_metrics"]["test_loss"] > 0.0
    assert Path(result.json()["model_path"], "model.pt").is_file()
    assert sorted(p.name for p in strategies_dir.iterdir()) == files_before


def test_cancel_through_the_operations_api_ends_cancelled_without_a_result(
    ktrdr_client: httpx.Client, strategies_dir: Path
) -> None:
    text = strategy_text(
        strategies_dir, **{"epochs: 10": "epochs: 200", "batch_size: 64": "batch_size: 8"}
    )
    session_id = _start(ktrdr_client, text)
    operation_path = f"/api/v1/operations/{era_b_host_operation_id(session_id)}"
    poll_json(ktrdr_client, operation_path, lambda a: a["data"]["progress"]["steps_completed"] >= 1)

    cancelled = ktrdr_client.delete(f"{operation_path}/cancel", params={"reason": "user"})
    final = poll_json(
        ktrdr_client, operation_path, lambda a: a["data"]["status"] in FINAL_OPERATION
    )["data"]
    result = ktrdr_client.get(f"/training/result/{session_id}")

    assert cancelled.status_code == 200
    assert cancelled.json()["success"] is True
    assert final["status"] == "cancelled"
    assert final["result_summary"] is None
    assert result.status_code == 400
    assert "cancelled" in result.json()["detail"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name: x\nbase: &b {a: 1}\nother: *b\n", "aliases"),
        ("- just\n- a list\n", "mapping"),
        ("name: [unclosed\n", "YAML"),
        ("name: x\n", "indicators"),  # validated like a strategy file
    ],
)
def test_bad_inline_strategies_are_refused_with_422(
    ktrdr_client: httpx.Client, text: str, named: str
) -> None:
    response = ktrdr_client.post("/training/start", json=era_b_start_body(text))

    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]


def test_unknown_operation_and_result_return_404(ktrdr_client: httpx.Client) -> None:
    assert ktrdr_client.get("/api/v1/operations/host_training_nope").status_code == 404
    assert ktrdr_client.get("/api/v1/operations/nope/metrics").status_code == 404
    assert ktrdr_client.delete("/api/v1/operations/nope/cancel").status_code == 404
    assert ktrdr_client.get("/training/result/nope").status_code == 404
