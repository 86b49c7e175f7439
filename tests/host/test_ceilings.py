"""A real host refuses sizes past its ceilings at the start request (422 naming the field
and the ceiling), on its own routes and KTRDR's, and its document states them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from training_engine.strategy.examples import STRATEGY_EXAMPLE

from tests.conftest import find_free_port
from tests.fixtures.servers import run_host_service
from tests.host.ktrdr_bodies import ERA_A_START_BODY

pytestmark = pytest.mark.slow

MAX_EPOCHS = 50
BIGGEST_INT32 = 2_147_483_647


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path) -> Iterator[httpx.Client]:
    """A host whose epoch ceiling is lowered by its setting."""
    env = {"TRAINING_HOST_MAX_EPOCHS": str(MAX_EPOCHS)}
    root = tmp_path_factory.mktemp("ceilings")
    with (
        run_host_service(root, find_free_port(), env=env, data_dir=sample_data_dir) as service,
        httpx.Client(base_url=service.url, timeout=60) as client,
    ):
        yield client


def start(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/trainings/start", json={"symbol": "AAPL", "timeframe": "1h", **body})


def inline(**architecture: Any) -> dict[str, Any]:
    strategy = copy.deepcopy(STRATEGY_EXAMPLE)
    strategy["model"]["architecture"].update(architecture)
    return strategy


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {"epochs": BIGGEST_INT32}}, "config.epochs"),
        ({"config": {"batch_size": BIGGEST_INT32}}, "config.batch_size"),
        ({"strategy": inline(hidden_layers=[BIGGEST_INT32])}, "hidden_layers[0]"),
    ],
    ids=["epochs", "batch_size", "hidden_width"],
)
def test_the_issues_sizes_are_refused_at_the_start_request(
    host: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = start(host, **body)

    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert "<=" in response.json()["detail"] or "ceiling" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "ceiling"),
    [
        (
            {"config": {"epochs": MAX_EPOCHS + 1}},
            "config.epochs",
            f"{MAX_EPOCHS} (setting max_epochs)",
        ),
        (
            {"strategy": inline(hidden_layers=[5000])},
            "hidden_layers[0]",
            "4,096 (setting max_hidden_width)",
        ),
        ({"strategy": inline(hidden_layers=[4096] * 4)}, "'model'", "(setting max_parameters)"),
    ],
    ids=["epochs-setting", "hidden-width", "parameters"],
)
def test_a_size_past_a_ceiling_names_the_field_and_the_ceiling(
    host: httpx.Client, body: dict[str, Any], field: str, ceiling: str
) -> None:
    response = start(host, **body)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "StrategyConfigError"
    assert field in response.json()["detail"] and ceiling in response.json()["detail"]


def test_a_size_at_its_ceiling_passes_on_to_the_data_check(host: httpx.Client) -> None:
    response = start(host, symbol="NODATA", config={"epochs": MAX_EPOCHS})

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "DataFileNotFoundError"


def test_the_document_states_this_hosts_ceilings(host: httpx.Client) -> None:
    schemas = host.get("/openapi.json").json()["components"]["schemas"]
    architecture = schemas["ArchitectureSection"]["properties"]

    for model in ("TrainingOverrides", "TrainingSection"):
        assert schemas[model]["properties"]["epochs"]["maximum"] == MAX_EPOCHS
    assert schemas["TrainingOverrides"]["properties"]["batch_size"]["maximum"] == 65_536
    assert architecture["hidden_layers"]["maxItems"] == 16
    assert architecture["hidden_layers"]["items"]["maximum"] == 4096
    assert schemas["FeaturesSection"]["properties"]["lookback_periods"]["maximum"] == 1000


def test_ktrdr_starts_meet_the_same_ceilings(host: httpx.Client) -> None:
    training = {**ERA_A_START_BODY["training_configuration"], "epochs": MAX_EPOCHS + 1}
    response = host.post(
        "/training/start", json={**ERA_A_START_BODY, "training_configuration": training}
    )

    assert response.status_code == 422, response.text
    assert "config.epochs" in response.json()["detail"]
    assert "setting max_epochs" in response.json()["detail"]
