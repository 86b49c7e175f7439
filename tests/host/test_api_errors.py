"""Every error code the API promises, over real HTTP: clients never see a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.host.conftest import QUICK_BODY, AppFactory, wait_for_status

pytestmark = pytest.mark.slow

SLOW_BODY: dict[str, Any] = {
    "symbol": "AAPL",
    "timeframe": "1h",
    "config": {"epochs": 200, "batch_size": 8, "early_stopping": {"enabled": False}},
}


@pytest.fixture
def client(start_app: AppFactory) -> httpx.Client:
    url, _ = start_app()
    return httpx.Client(base_url=url, timeout=30)


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "error"}
    for word in words:
        assert word in body["detail"], body


def test_status_of_unknown_training_returns_404(client: httpx.Client) -> None:
    assert_error(client.get("/trainings/nope/status"), 404, "nope")
    assert_error(client.post("/trainings/nope/stop"), 404, "nope")
    assert_error(client.get("/training/status/nope"), 404, "nope")


def test_misspelt_field_returns_422_naming_it(client: httpx.Client) -> None:
    body = {**QUICK_BODY, "epocs": 3}
    assert_error(client.post("/trainings/start", json=body), 422, "epocs", "unknown field")


def test_unknown_strategy_returns_422(client: httpx.Client) -> None:
    body = {**QUICK_BODY, "strategy": "no_such_strategy"}
    assert_error(client.post("/trainings/start", json=body), 422, "no_such_strategy")


def test_strategy_name_with_path_is_rejected(client: httpx.Client) -> None:
    body = {**QUICK_BODY, "strategy": "../../etc/passwd"}
    assert_error(client.post("/trainings/start", json=body), 422, "strategy")


def test_bad_config_value_returns_422_naming_the_key(client: httpx.Client) -> None:
    body = {**QUICK_BODY, "config": {"epochs": "many"}}
    assert_error(client.post("/trainings/start", json=body), 422, "epochs")


def test_missing_market_data_returns_422(client: httpx.Client) -> None:
    body = {**QUICK_BODY, "symbol": "ZZZZ"}
    assert_error(client.post("/trainings/start", json=body), 422, "ZZZZ")


def test_malformed_json_returns_422(client: httpx.Client) -> None:
    response = client.post(
        "/trainings/start", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422)


def test_body_without_json_content_type_returns_422_saying_how_to_send_it(
    client: httpx.Client,
) -> None:
    # What `curl -d '{...}'` sends without -H 'content-type: application/json'.
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = client.post("/trainings/start", content=b'{"symbol": "AAPL"}', headers=form)
    assert_error(
        response,
        422,
        "send the body as JSON with -H 'content-type: application/json'",
        "'application/x-www-form-urlencoded'",
    )


def test_empty_body_returns_422_saying_what_to_send(client: httpx.Client) -> None:
    json_type = {"content-type": "application/json"}
    response = client.post("/trainings/start", content=b"", headers=json_type)
    assert_error(response, 422, "the body is empty", '{"symbol": "AAPL", "timeframe": "1h"}')


def test_non_json_body_returns_422_with_the_position_in_words(client: httpx.Client) -> None:
    json_type = {"content-type": "application/json"}
    body = b'{"symbol": "AAPL",\n "timeframe": 1h}'
    response = client.post("/trainings/start", content=body, headers=json_type)
    detail = "the body is not valid JSON: Expecting ',' delimiter at line 2, column 16"
    assert_error(response, 422, detail)


def test_body_that_is_not_an_object_returns_422(client: httpx.Client) -> None:
    response = client.post("/trainings/start", json=["AAPL", "1h"])
    assert_error(response, 422, "the body must be a JSON object")


def test_empty_object_where_fields_are_required_names_each_missing_field(
    client: httpx.Client,
) -> None:
    response = client.post("/trainings/start-multi-symbol", json={})
    assert_error(response, 422, "symbols: Field required", "timeframes: Field required")


@pytest.mark.parametrize(("symbol", "timeframe"), [("ZZZZ", "1h"), ("AAPL", "7m")])
def test_unknown_symbol_or_timeframe_lists_the_data_that_exists(
    client: httpx.Client, symbol: str, timeframe: str
) -> None:
    body = {**QUICK_BODY, "symbol": symbol, "timeframe": timeframe}
    response = client.post("/trainings/start", json=body)
    assert_error(response, 422, f"no data for {symbol} {timeframe}", "the data folder has AAPL (")
    assert "1h" in response.json()["detail"].split("the data folder has")[1]


def test_unknown_status_filter_returns_422(client: httpx.Client) -> None:
    assert_error(client.get("/trainings", params={"status": "done"}), 422, "done")


@pytest.mark.parametrize(
    ("strategy_config", "named"),
    [
        ("../../../etc/passwd", "'..'"),
        ("strategies/../../momentum_mlp.yaml", "'..'"),
        ("/etc/momentum_mlp.yaml", "strategies directory"),
    ],
)
def test_ktrdr_strategy_path_outside_strategies_dir_returns_422(
    client: httpx.Client, strategy_config: str, named: str
) -> None:
    body = {
        "model_configuration": {
            "strategy_config": strategy_config,
            "symbols": ["AAPL"],
            "timeframes": ["1h"],
        }
    }
    assert_error(client.post("/training/start", json=body), 422, named)


def test_oversized_body_returns_413(start_app: AppFactory) -> None:
    url, _ = start_app(max_body_bytes=2048)
    padding = {"strategy": {"name": "x" * 4096}}
    response = httpx.post(f"{url}/trainings/start", json=padding, timeout=30)
    assert_error(response, 413, "2048")


def test_same_id_with_different_request_returns_409(client: httpx.Client) -> None:
    first = client.post("/trainings/start", json={**SLOW_BODY, "training_id": "dup"})
    assert first.status_code == 202, first.text
    again = client.post("/trainings/start", json={**SLOW_BODY, "training_id": "dup"})
    assert again.status_code == 200
    assert again.json()["created"] is False
    other = {**SLOW_BODY, "training_id": "dup", "config": {"epochs": 3}}
    assert_error(client.post("/trainings/start", json=other), 409, "dup")
    client.post("/trainings/dup/stop")


def test_delete_while_running_returns_409(client: httpx.Client) -> None:
    assert client.post("/trainings/start", json={**SLOW_BODY, "training_id": "busy"}).is_success
    wait_for_status(client, "busy", {"running"})
    assert_error(client.delete("/training/sessions/busy"), 409, "busy")
    client.post("/trainings/busy/stop")
    wait_for_status(client, "busy", {"cancelled"})
    deleted = client.delete("/training/sessions/busy")
    assert deleted.status_code == 200, deleted.text
    assert client.get("/trainings/busy/status").status_code == 404


def test_full_queue_returns_429(start_app: AppFactory) -> None:
    url, _ = start_app(max_concurrent_jobs=1, max_queue_size=1)
    client = httpx.Client(base_url=url, timeout=30)
    ids = ["q1", "q2", "q3"]
    answers = [client.post("/trainings/start", json={**SLOW_BODY, "training_id": i}) for i in ids]
    assert [a.status_code for a in answers[:2]] == [202, 202]
    assert_error(answers[2], 429, "queue")
    for i in ids[:2]:
        client.post(f"/trainings/{i}/stop")


def test_missing_or_wrong_token_returns_401(start_app: AppFactory) -> None:
    url, _ = start_app(api_token="s3cret")
    assert httpx.get(f"{url}/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = httpx.get(f"{url}/trainings", headers=headers)
        assert_error(response, 401, "token")
        assert response.headers["www-authenticate"] == "Bearer"
    assert_error(httpx.get(f"{url}/metrics"), 401)
    assert_error(httpx.get(f"{url}/health/detailed"), 401)
    ok = httpx.get(f"{url}/trainings", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_start_while_shutting_down_returns_503(start_app: AppFactory) -> None:
    url, app = start_app()
    app.state.manager.shutdown(1.0)
    response = httpx.post(f"{url}/trainings/start", json=QUICK_BODY, timeout=30)
    assert_error(response, 503, "shutting down")
