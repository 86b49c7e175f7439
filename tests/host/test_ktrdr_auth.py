"""KTRDR sends no Authorization header: its routes open only to the addresses the operator
lists (``ktrdr_clients``), and those callers see and act on KTRDR's own trainings only.

Issue 23, finding 1: with a token set, ``ktrdr_routes_without_token: true`` let anyone list,
start, cancel and delete every training through KTRDR's routes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from training_host.config import Settings

from tests.conftest import REPO_ROOT, find_free_port
from tests.fixtures.servers import run_host_service
from tests.host.conftest import AppFactory
from tests.host.ktrdr_bodies import era_b_start_body

TOKEN = "s3cret-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# Every loopback address reaches a server on 127.0.0.1: the listed client is 127.0.0.2.
KTRDR_ADDRESS = "127.0.0.2"
OTHER_ADDRESS = "127.0.0.3"
OUR_BODY: dict[str, Any] = {
    "training_id": "ours",
    "symbol": "AAPL",
    "timeframe": "1h",
    "config": {"epochs": 200},
}


def client_from(address: str, url: str, **kwargs: Any) -> httpx.Client:
    """A client whose connections leave from ``address`` (as another machine's would)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, transport=transport, timeout=30.0, **kwargs)


def ktrdr_strategy_text(strategies_dir: Path) -> str:
    text = (strategies_dir / "momentum_mlp.yaml").read_text()
    assert "epochs: 10" in text
    return text.replace("epochs: 10", "epochs: 1")


@pytest.fixture
def guarded_host(start_app: AppFactory) -> Iterator[str]:
    """A host with a token that lists KTRDR's backend (127.0.0.2) as its only KTRDR client."""
    url, _ = start_app(api_token=TOKEN, ktrdr_clients=[KTRDR_ADDRESS], max_concurrent_jobs=2)
    yield url


def test_ktrdr_routes_refuse_an_unlisted_address_without_the_token(guarded_host: str) -> None:
    with client_from(OTHER_ADDRESS, guarded_host) as stranger:
        answers = [
            stranger.get("/training/sessions"),
            stranger.post("/training/start", json={"strategy_yaml": "x: 1"}),
            stranger.delete("/api/v1/operations/ours/cancel"),
            stranger.delete("/training/sessions/ours"),
            stranger.get("/api/v1/operations/ours"),
            stranger.post("/backend-shutdown"),
        ]

    assert [answer.status_code for answer in answers] == [401] * len(answers)
    assert "ktrdr_clients" in answers[0].json()["detail"]


def test_a_listed_ktrdr_client_sees_and_acts_on_ktrdr_trainings_only(
    guarded_host: str, strategies_dir: Path
) -> None:
    with (
        httpx.Client(base_url=guarded_host, headers=BEARER, timeout=30.0) as owner,
        client_from(KTRDR_ADDRESS, guarded_host) as ktrdr,
    ):
        assert owner.post("/trainings/start", json=OUR_BODY).status_code == 202
        started = ktrdr.post(
            "/training/start", json=era_b_start_body(ktrdr_strategy_text(strategies_dir))
        )
        assert started.status_code == 200, started.text
        theirs = started.json()["session_id"]

        listed = ktrdr.get("/training/sessions").json()
        refused = [
            ktrdr.get("/training/status/ours"),
            ktrdr.get("/training/result/ours"),
            ktrdr.get("/api/v1/operations/ours"),
            ktrdr.get("/api/v1/operations/host_training_ours/metrics"),
            ktrdr.delete("/api/v1/operations/ours/cancel"),
            ktrdr.post("/training/stop", json={"session_id": "ours"}),
            ktrdr.delete("/training/sessions/ours"),
        ]
        own = ktrdr.get(f"/api/v1/operations/{theirs}")
        ours_after = owner.get("/trainings/ours/status").json()
        listed_with_token = ktrdr.get("/training/sessions", headers=BEARER).json()
        shutdown = ktrdr.post("/backend-shutdown")
        owner.post("/trainings/ours/stop")

    assert [item["session_id"] for item in listed["sessions"]] == [theirs]
    assert listed["total_sessions"] == 1
    assert [answer.status_code for answer in refused] == [404] * len(refused)
    assert own.status_code == 200 and own.json()["data"]["operation_id"] == theirs
    assert ours_after["status"] in {"queued", "running"}  # neither stopped nor deleted
    assert {item["session_id"] for item in listed_with_token["sessions"]} == {"ours", theirs}
    assert shutdown.json() == {"acknowledged": True}


def test_the_token_still_opens_ktrdr_routes_to_any_address(guarded_host: str) -> None:
    with client_from(OTHER_ADDRESS, guarded_host, headers=BEARER) as owner:
        assert owner.get("/training/sessions").status_code == 200
        assert owner.get("/api/v1/operations/x").status_code == 404
    with client_from(KTRDR_ADDRESS, guarded_host) as ktrdr:
        wrong = ktrdr.get("/training/sessions", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401  # a wrong token is refused, even from a listed address


def test_our_routes_need_the_token_even_from_a_listed_ktrdr_client(guarded_host: str) -> None:
    with client_from(KTRDR_ADDRESS, guarded_host) as ktrdr:
        assert ktrdr.get("/trainings").status_code == 401
        assert ktrdr.post("/trainings/start", json=OUR_BODY).status_code == 401


def test_ktrdr_routes_need_the_token_when_no_client_is_listed(start_app: AppFactory) -> None:
    url, _ = start_app(api_token=TOKEN)
    assert httpx.get(f"{url}/training/sessions").status_code == 401
    assert httpx.get(f"{url}/api/v1/operations/x").status_code == 401


def test_a_forwarded_for_header_does_not_make_a_local_caller_a_ktrdr_client(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    # The real service process: uvicorn would believe X-Forwarded-For from 127.0.0.1.
    port = find_free_port()
    env = {"TRAINING_HOST_API_TOKEN": TOKEN, "TRAINING_HOST_KTRDR_CLIENTS": "10.9.8.7"}
    with run_host_service(tmp_path, port, env=env, data_dir=sample_data_dir) as host:
        forged = httpx.get(f"{host.url}/training/sessions", headers={"X-Forwarded-For": "10.9.8.7"})
    assert forged.status_code == 401


def test_the_removed_opening_setting_is_refused_naming_its_replacement() -> None:
    with pytest.raises(ValidationError, match="ktrdr_clients"):
        Settings(ktrdr_routes_without_token=True, api_token=TOKEN)
    refused = subprocess.run(
        [sys.executable, "-m", "training_host", "--port", str(find_free_port())],
        env={"TRAINING_HOST_KTRDR_ROUTES_WITHOUT_TOKEN": "true", "PATH": "/usr/bin:/bin"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "list the KTRDR backend's address in ktrdr_clients" in refused.stderr


def test_ktrdr_clients_are_read_from_one_variable_with_commas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAINING_HOST_KTRDR_CLIENTS", "172.17.0.0/16, 10.0.0.5")
    listed = [str(network) for network in Settings().ktrdr_clients]
    assert listed == ["172.17.0.0/16", "10.0.0.5/32"]
    monkeypatch.setenv("TRAINING_HOST_KTRDR_CLIENTS", "10.0.0.0/33")
    with pytest.raises(ValidationError, match="ktrdr_clients"):
        Settings()


def test_a_ktrdr_start_is_remembered_as_started_through_ktrdr(
    guarded_host: str, strategies_dir: Path
) -> None:
    with client_from(KTRDR_ADDRESS, guarded_host) as ktrdr:
        body = {**era_b_start_body(ktrdr_strategy_text(strategies_dir)), "task_id": "task-1"}
        assert ktrdr.post("/training/start", json=body).status_code == 200
        # The same id on our own API is another door: KTRDR's training is not adopted.
        with httpx.Client(base_url=guarded_host, headers=BEARER) as owner:
            clash = owner.post("/trainings/start", json={**OUR_BODY, "training_id": "task-1"})
            listed = ktrdr.get("/training/sessions").json()["sessions"]
    assert clash.status_code == 409
    assert [item["session_id"] for item in listed] == ["task-1"]
