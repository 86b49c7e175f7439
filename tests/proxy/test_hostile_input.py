"""Hostile and broken input against the real host process, through the backend, and locally.

Every case is sent to three targets: the host service itself, the backend forwarding
to that host, and a backend whose host is disabled (the local CPU fallback). Each must
answer 422 naming the field, never a 500, and nothing may be written outside the
service's folders.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from backend_proxy.config import Settings

from tests.conftest import REPO_ROOT, find_free_port
from tests.fixtures.postgres import fresh_database
from tests.fixtures.servers import HostServiceProcess, run_host_service
from tests.proxy.conftest import run_backend

pytestmark = pytest.mark.slow

STRATEGY = yaml.safe_load((REPO_ROOT / "config/strategies/momentum_mlp.yaml").read_text())


@dataclass
class Target:
    """One service under test: where its start and list routes are."""

    name: str
    client: httpx.Client
    prefix: str  # "/trainings" on the host, "/api/trainings" on the backend
    models_dir: Path
    checkpoints_dir: Path

    def start(self, body: dict[str, Any] | str) -> httpx.Response:
        content = body if isinstance(body, str) else json.dumps(body)
        headers = {"content-type": "application/json"}
        return self.client.post(f"{self.prefix}/start", content=content, headers=headers)


@dataclass
class Services:
    host: HostServiceProcess
    targets: dict[str, Target]
    root: Path
    data_dir: Path


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path) -> Iterator[Services]:
    """The host process, a backend forwarding to it and a backend training locally."""
    root = tmp_path_factory.mktemp("hostile")
    with run_host_service(root / "host", find_free_port(), data_dir=sample_data_dir) as host:

        def backend_settings(name: str, use_host: bool) -> Settings:
            folder = root / name
            return Settings(
                use_training_host_service=use_host,
                training_host_service_url=host.url,
                host_service_config_file=folder / "absent.yaml",
                database_url=f"sqlite:///{folder / 'backend.sqlite3'}",
                data_dir=sample_data_dir,
                models_dir=folder / "models",
                strategies_dir=REPO_ROOT / "config" / "strategies",
                checkpoints_dir=folder / "checkpoints",
                health_check_interval_seconds=0.5,
            )

        proxy, local = backend_settings("proxy", True), backend_settings("local", False)
        with (
            run_backend(proxy) as proxy_client,
            run_backend(local) as local_client,
            httpx.Client(base_url=host.url, timeout=30) as host_client,
        ):
            targets = {
                "host": Target(
                    "host",
                    host_client,
                    "/trainings",
                    root / "host" / "models",
                    root / "host" / "checkpoints",
                ),
                "backend": Target(
                    "backend",
                    proxy_client,
                    "/api/trainings",
                    proxy.models_dir,
                    proxy.checkpoints_dir,
                ),
                "local": Target(
                    "local", local_client, "/api/trainings", local.models_dir, local.checkpoints_dir
                ),
            }
            yield Services(host, targets, root, sample_data_dir)


TARGETS = ["host", "backend", "local"]


def inline_strategy(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(STRATEGY)), **changes}


def assert_refused(response: httpx.Response, *words: str) -> dict[str, Any]:
    assert response.status_code == 422, f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    for word in words:
        assert word in body["detail"], body
    return body


# ---------------------------------------------------------------- 1. paths


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    "name",
    ["../x", "/tmp/pwned", "a/../../b", "..", "a\x00b", "x\ud800"],
    ids=["parent", "absolute", "nested", "dotdot", "nul", "surrogate"],
)
def test_inline_strategy_name_that_is_a_path_is_refused(
    services: Services, target: str, name: str
) -> None:
    service = services.targets[target]
    response = service.start({"strategy": inline_strategy(name=name), "config": {"epochs": 1}})
    assert_refused(response, "name")
    assert not (services.root / "x").exists()
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symbol": "../AAPL", "timeframe": "1h"}, "symbol"),
        ({"symbols": ["AAPL", "/etc/passwd"], "timeframe": "1h"}, "symbol"),
        ({"symbol": "AAPL", "timeframe": "../1h"}, "timeframe"),
        ({"strategy": "../momentum_mlp"}, "strategy"),
        ({"strategy": "/etc/passwd"}, "strategy"),
    ],
)
def test_names_that_become_paths_are_refused(
    services: Services, target: str, body: dict[str, Any], field: str
) -> None:
    assert_refused(services.targets[target].start(body), field)


# ---------------------------------------------------------------- 4. no directories in errors


@pytest.mark.parametrize("target", TARGETS)
def test_error_messages_do_not_print_the_services_directories(
    services: Services, target: str, sample_data_dir: Path
) -> None:
    service = services.targets[target]
    missing_data = service.start({"symbol": "NOSUCH", "timeframe": "1h"})
    unknown_strategy = service.start({"strategy": "no_such_strategy"})

    for response in (missing_data, unknown_strategy):
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        for folder in (sample_data_dir, REPO_ROOT / "config", services.root):
            assert str(folder) not in detail, detail
    assert "NOSUCH_1h" in missing_data.json()["detail"]


# ---------------------------------------------------------------- 5. numbers and strings


BAD_BODIES = [
    ('{"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 1e30}}', "epochs"),
    ('{"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 99999999999999999999}}', "epochs"),
    (
        '{"symbol": "AAPL", "timeframe": "1h", "config": {"learning_rate": Infinity}}',
        "learning_rate",
    ),
    ('{"symbol": "AAPL", "timeframe": "1h", "config": {"learning_rate": NaN}}', "learning_rate"),
    ('{"symbol": "AAPL", "timeframe": "1h", "config": {"batch_size": -Infinity}}', "batch_size"),
    ('{"symbol": "AA\\u0000PL", "timeframe": "1h"}', "symbol"),
    ('{"symbol": "AAPL\\udc80", "timeframe": "1h"}', "symbol"),
    ('{"symbol": "AAPL", "timeframe": "1h", "start_date": "2024\\u0000-01-01"}', "start_date"),
    ('{"symbol": "AAPL", "timeframe": "1h", "end_date": "2024-01-01\\ud800"}', "end_date"),
    ('{"training_id": "a\\ud800", "symbol": "AAPL", "timeframe": "1h"}', "training_id"),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("raw", "field"), BAD_BODIES, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD_BODIES)]
)
def test_non_finite_huge_and_unencodable_values_are_422_naming_the_field(
    services: Services, target: str, raw: str, field: str
) -> None:
    assert_refused(services.targets[target].start(raw), field)


def strategy_with_fuzzy_parameter(value: str) -> str:
    body = json.dumps({"strategy": inline_strategy(), "config": {"epochs": 1}})
    return body.replace("[0, 0, 40]", f"[0, {value}, 40]", 1)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_non_finite_fuzzy_parameters_are_422_naming_the_field(
    services: Services, target: str, value: str
) -> None:
    raw = strategy_with_fuzzy_parameter(value)
    assert value in raw
    assert_refused(services.targets[target].start(raw), "parameters")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("text", ["a\x00b", "\ud800"], ids=["nul", "surrogate"])
def test_unencodable_text_anywhere_in_an_inline_strategy_is_422(
    services: Services, target: str, text: str
) -> None:
    strategy = inline_strategy(description=text)
    raw = json.dumps({"strategy": strategy, "config": {"epochs": 1}})
    assert_refused(services.targets[target].start(raw), "strategy.description")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("param", ["offset", "limit"])
def test_huge_list_parameters_are_422(services: Services, target: str, param: str) -> None:
    service = services.targets[target]
    response = service.client.get(service.prefix, params={param: "99999999999999999999"})
    assert_refused(response, param)


@pytest.mark.parametrize("target", TARGETS)
def test_unknown_query_parameters_are_422_naming_them_and_what_is_accepted(
    services: Services, target: str
) -> None:
    service = services.targets[target]
    response = service.client.get(service.prefix, params={"symbl": "AAPL", "limit": 5})
    assert_refused(response, "unknown query parameter 'symbl'", "it accepts ", "limit", "offset")
    status = service.client.get(f"{service.prefix}/some-id/status", params={"verbose": 1})
    assert_refused(status, "'verbose'", "it takes no query parameters")


# ---------------------------------------------------------------- 7b. how the body is sent


@pytest.mark.parametrize("target", TARGETS)
def test_a_body_sent_without_the_json_content_type_is_told_how_to_send_it(
    services: Services, target: str
) -> None:
    service = services.targets[target]
    # curl -d without -H: a form content-type.
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = service.client.post(
        f"{service.prefix}/start", content=b'{"symbol": "AAPL"}', headers=form
    )
    assert_refused(response, "-H 'content-type: application/json'")
    empty = service.client.post(
        f"{service.prefix}/start", content=b"", headers={"content-type": "application/json"}
    )
    assert_refused(empty, "the body is empty")
    broken = service.start('{"symbol": AAPL}')
    assert_refused(broken, "not valid JSON", "at line 1, column 12")


# ---------------------------------------------------------------- 8. device


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("device", ["cpu; rm -rf /", "cuda:7", "gpu"])
def test_bad_device_is_422_naming_device(services: Services, target: str, device: str) -> None:
    body = {"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 1, "device": device}}
    assert_refused(services.targets[target].start(body), "device")


# ---------------------------------------------------------------- 10. dates


@pytest.mark.parametrize("target", TARGETS)
def test_dates_with_offsets_are_compared_as_instants(services: Services, target: str) -> None:
    service = services.targets[target]
    valid = {
        "training_id": f"offsets-{target}",
        "symbol": "AAPL",
        "timeframe": "1h",
        "start_date": "2024-01-01T00:00+05:00",  # 2023-12-31T19:00Z
        "end_date": "2023-12-31T23:00Z",
        "config": {"epochs": 1},
    }
    reversed_range = {**valid, "training_id": f"reversed-{target}", "end_date": "2023-12-31T18:00Z"}

    accepted = service.start(valid)
    service.client.post(f"{service.prefix}/offsets-{target}/stop")
    refused = service.start(reversed_range)

    assert accepted.status_code == 202, accepted.text
    assert_refused(refused, "start_date", "end_date")


# ---------------------------------------------------------------- 6. the breaker


def test_bad_requests_never_open_the_breaker_nor_leave_ghosts(services: Services) -> None:
    backend = services.targets["backend"].client
    bad = [
        '{"symbol": "AAPL", "timeframe": "1h", "config": {"learning_rate": NaN}}',
        '{"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": Infinity}}',
        '{"symbol": "AAPL\\ud800", "timeframe": "1h"}',
        '{"strategy": {"name": "x", "indicators": [{"name": "rsi", "period": NaN}]}}',
    ]
    before = backend.get("/api/trainings", params={"limit": 500}).json()["total"]
    answers = [
        backend.post(
            "/api/trainings/start", content=raw, headers={"content-type": "application/json"}
        )
        for raw in bad
    ]
    breaker = backend.get("/api/training-host/status").json()["breaker"]
    listed = backend.get("/api/trainings", params={"limit": 500}).json()

    assert [a.status_code for a in answers] == [422] * len(bad), [a.text for a in answers]
    assert breaker["state"] == "closed"
    assert breaker["failure_count"] == 0
    assert listed["total"] == before
    assert all(item["status"] != "unknown" for item in listed["items"])


# ---------------------------------------------------------------- 9. concurrent starts


def start_twice_at_once(base_url: str, body: dict[str, Any]) -> list[httpx.Response]:
    """Two clients post the same start at the same instant."""
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            barrier.wait()
            answers.append(client.post("/api/trainings/start", json=body))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.fixture(scope="module")
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A database of its own on the test PostgreSQL server, for one backend's routing table."""
    with fresh_database(postgres_url, "hostile") as url:
        yield url


@pytest.mark.postgres
@pytest.mark.parametrize("use_host", [True, False], ids=["to-host", "local"])
@pytest.mark.parametrize("attempt", range(2))
def test_concurrent_starts_with_one_id_make_one_training(
    services: Services, postgres_database: str, use_host: bool, attempt: int
) -> None:
    settings = Settings(
        use_training_host_service=use_host,
        training_host_service_url=services.host.url,
        host_service_config_file=services.root / "absent.yaml",
        database_url=postgres_database,
        data_dir=services.data_dir,
        models_dir=services.root / "pg" / "models",
        strategies_dir=REPO_ROOT / "config" / "strategies",
        checkpoints_dir=services.root / "pg" / "checkpoints",
        health_check_interval_seconds=0.5,
    )
    training_id = f"twice-{'host' if use_host else 'local'}-{attempt}"
    body = {"training_id": training_id, "symbol": "AAPL", "timeframe": "1h"}
    body["config"] = {"epochs": 1}
    with run_backend(settings) as backend:
        answers = start_twice_at_once(str(backend.base_url), body)
        backend.post(f"/api/trainings/{training_id}/stop")
        listed = backend.get("/api/trainings", params={"limit": 500}).json()
    on_host = httpx.get(f"{services.host.url}/trainings", params={"limit": 500}).json()

    assert sorted(a.status_code for a in answers) == [200, 202], [a.text for a in answers]
    assert {a.json()["training_id"] for a in answers} == {training_id}
    assert [i["training_id"] for i in listed["items"]].count(training_id) == 1
    host_ids = [i["training_id"] for i in on_host["items"]]
    assert host_ids.count(training_id) == (1 if use_host else 0)
