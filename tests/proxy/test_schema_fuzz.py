"""Schemathesis against both services' OpenAPI documents, on real servers.

The host runs as its own process and the backend under uvicorn, both with a bearer
token. Each route gets a bounded number of generated requests, once with the token and
once without: no answer may be a 5xx, and every answer must be documented (status,
content type, body schema). The host has no market data, so no generated start ever
trains: it is refused after full validation, which is the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from backend_proxy.config import Settings
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import REPO_ROOT, find_free_port
from tests.fixtures.servers import run_host_service, serve_app

pytestmark = pytest.mark.slow

HOST_TOKEN = "fuzz-host-token"
BACKEND_TOKEN = "fuzz-backend-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# What answers without a token on both services.
OPEN_PATHS = {"/", "/health"}
# Per route, per generation mode (valid and invalid data) and per run (with and without
# the token): enough to reach every validator, few enough for `make test`.
EXAMPLES_PER_ROUTE = 12
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Service:
    url: str
    token: str


@pytest.fixture(scope="module")
def fuzz_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    """A host process and a backend forwarding to it, each behind its own token."""
    root = tmp_path_factory.mktemp("fuzz")
    empty_data = root / "no-data"
    empty_data.mkdir()
    env = {"TRAINING_HOST_API_TOKEN": HOST_TOKEN, "TRAINING_HOST_MAX_QUEUE_SIZE": "2"}
    with run_host_service(root / "host", find_free_port(), env=env, data_dir=empty_data) as host:
        backend_settings = Settings(
            training_host_service_url=host.url,
            host_api_token=HOST_TOKEN,
            api_token=SecretStr(BACKEND_TOKEN),
            host_service_config_file=root / "absent.yaml",
            database_url=f"sqlite:///{root / 'backend.sqlite3'}",
            data_dir=empty_data,
            models_dir=root / "backend" / "models",
            strategies_dir=REPO_ROOT / "config" / "strategies",
            checkpoints_dir=root / "backend" / "checkpoints",
            health_check_interval_seconds=1,
        )
        from backend_proxy.app import create_app

        with serve_app(create_app(backend_settings), find_free_port()) as backend_url:
            yield {
                "host": Service(host.url, HOST_TOKEN),
                "backend": Service(backend_url, BACKEND_TOKEN),
            }


def load_schema(service: Service) -> Any:
    """The service's own OpenAPI document, as served."""
    document = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
    return schemathesis.openapi.from_dict(document)


def fuzz(service: Service, *, with_token: bool) -> list[str]:
    """Run every operation's generated cases; returns one line per failing operation."""
    headers = {"Authorization": f"Bearer {service.token}"} if with_token else {}
    schema = load_schema(service)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 5, "the document lists almost no operations"
    runs = [(op, mode) for op in operations for mode in GenerationMode]
    for operation, mode in runs:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = case.call(base_url=service.url, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS)
            if not with_token and case.operation.path not in OPEN_PATHS:
                # 401, or 422 for a body that is not JSON at all (read before the token).
                assert response.status_code in {401, 422}, f"{case.method} {case.path} is open"

        try:
            check()
        except Unsatisfiable:
            # No invalid request exists for an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # report every failing operation
            failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    return failures


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("name", ["host", "backend"])
def test_fuzzed_requests_get_documented_answers_and_no_5xx(
    fuzz_services: dict[str, Service], name: str, with_token: bool
) -> None:
    failures = fuzz(fuzz_services[name], with_token=with_token)
    assert not failures, "\n\n".join(failures)
