"""KTRDR's ``POST /training/start`` refuses what every other start refuses, as a 422 that
names the problem: never a 500, never a traceback in the log, never a stored NUL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.servers import HostServiceProcess
from tests.host.ktrdr_bodies import ERA_A_START_BODY, era_b_start_body
from tests.host.ktrdr_polling import ktrdr_client, ktrdr_host

__all__ = ["ktrdr_client", "ktrdr_host"]
pytestmark = pytest.mark.slow

NESTED_20000_DEEP = "a: " + "[" * 20_000 + "]" * 20_000


def strategy_with(strategies_dir: Path, extra_line: str) -> str:
    """The shipped strategy's text with one more top-level line."""
    return (strategies_dir / "momentum_mlp.yaml").read_text() + f"\n{extra_line}\n"


@pytest.mark.parametrize(
    ("extra_line", "named"),
    [
        ("big: " + "9" * 5_000, "4300 digits"),
        ("2024-01-01: a date as a key", "key 2024-01-01 is a date"),
        ("12: a number as a key", "key 12 is an integer"),
        ('"nul\\0key": 1', "NUL"),
        ("when: 2024-13-45", "month must be in 1..12"),
    ],
    ids=["5000-digit-integer", "date-key", "integer-key", "nul-in-key", "impossible-date"],
)
def test_inline_strategy_the_store_cannot_keep_is_422_naming_the_problem(
    ktrdr_client: httpx.Client, strategies_dir: Path, extra_line: str, named: str
) -> None:
    body = era_b_start_body(strategy_with(strategies_dir, extra_line))
    response = ktrdr_client.post("/training/start", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "InvalidParameterError"
    assert named in response.json()["detail"]
    assert response.json()["detail"].startswith("strategy_yaml")


def test_strategy_yaml_nested_20000_deep_is_422_without_a_traceback(
    ktrdr_client: httpx.Client, ktrdr_host: HostServiceProcess
) -> None:
    response = ktrdr_client.post("/training/start", json=era_b_start_body(NESTED_20000_DEEP))

    assert response.status_code == 422, response.text
    assert "nested deeper than 32 levels" in response.json()["detail"]
    log = ktrdr_host.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "RecursionError" not in log


def test_dates_as_values_are_kept_as_text(ktrdr_client: httpx.Client, strategies_dir: Path) -> None:
    text = strategy_with(strategies_dir, "created: 2024-01-01") + "\n" + "reviewed: 2024-02-03\n"
    response = ktrdr_client.post("/training/start", json=era_b_start_body(text))

    assert response.status_code == 200, response.text
    session_id = response.json()["session_id"]
    ktrdr_client.post("/training/stop", json={"session_id": session_id})


def test_era_a_body_with_a_nul_anywhere_is_422(ktrdr_client: httpx.Client) -> None:
    training = {**ERA_A_START_BODY["training_configuration"], "note\x00": "a NUL in a key"}
    body = {**ERA_A_START_BODY, "training_configuration": training}
    response = ktrdr_client.post("/training/start", json=body)

    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["detail"]
    assert response.json()["detail"].startswith("training_configuration.note")
