"""The list's filters, the strategy's name in status and list, and a training's tags."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.host.conftest import FINAL, AppFactory, wait_for_status
from tests.host.test_api_errors import SLOW_BODY

pytestmark = pytest.mark.slow


def _ids(client: httpx.Client, **params: Any) -> list[str]:
    response = client.get("/trainings", params=params)
    assert response.status_code == 200, response.text
    return [item["training_id"] for item in response.json()["items"]]


def test_list_filters_strategy_name_and_tags(start_app: AppFactory) -> None:
    url, _ = start_app(max_concurrent_jobs=1)
    with httpx.Client(base_url=url, timeout=30) as client:
        # No strategy named: the default one trains, and its name is shown.
        default = client.post("/trainings/start", json={"training_id": "default", "config": {}})
        other = {**SLOW_BODY, "training_id": "eurusd", "symbol": "EURUSD", "timeframe": "4h"}
        named = client.post("/trainings/start", json={**other, "strategy": "momentum_mlp"})
        assert default.status_code == named.status_code == 202, (default.text, named.text)
        tagged = client.patch("/trainings/eurusd", json={"tags": ["nightly", "fx", "nightly"]})

        listed = {
            "all": _ids(client),
            "symbol": _ids(client, symbol="EURUSD"),
            "symbol any case": _ids(client, symbol="aapl"),
            "timeframe": _ids(client, timeframe="4h"),
            "strategy": _ids(client, strategy="momentum_mlp"),
            "other strategy": _ids(client, strategy="no_such"),
            "tag": _ids(client, tag="nightly"),
            "tag and symbol": _ids(client, tag="nightly", symbol="AAPL"),
            "status": _ids(client, status="queued"),
            "after": _ids(client, created_after="2020-01-01"),
            "before": _ids(client, created_before="2020-01-01T00:00:00Z"),
        }
        status = client.get("/trainings/default/status").json()
        bad_date = client.get("/trainings", params={"created_after": "yesterday"})
        bad_tag = client.patch("/trainings/eurusd", json={"tags": ["two words"]})
        unknown = client.patch("/trainings/nope", json={"tags": ["x"]})
        for training_id in ("eurusd", "default"):
            client.post(f"/trainings/{training_id}/stop")
            wait_for_status(client, training_id, FINAL)

    assert status["strategy"] == "momentum_mlp"
    assert (status["symbols"], status["timeframes"], status["tags"]) == (["AAPL"], ["1h"], [])
    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["tags"] == ["nightly", "fx"]
    assert tagged.json()["strategy"] == "momentum_mlp"
    assert listed == {
        "all": ["eurusd", "default"],
        "symbol": ["eurusd"],
        "symbol any case": ["default"],
        "timeframe": ["eurusd"],
        "strategy": ["eurusd", "default"],
        "other strategy": [],
        "tag": ["eurusd"],
        "tag and symbol": [],
        "status": ["eurusd"],  # one slot: the second waits
        "after": ["eurusd", "default"],
        "before": [],
    }
    assert bad_date.status_code == 422 and "created_after" in bad_date.json()["detail"]
    assert bad_tag.status_code == 422 and "'two words'" in bad_tag.json()["detail"]
    assert unknown.status_code == 404
