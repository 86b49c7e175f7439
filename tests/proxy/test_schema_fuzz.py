"""Schemathesis against both services' OpenAPI documents, on real servers.

The host runs as its own process and the backend under uvicorn, both with a bearer
token. Each route gets a bounded number of generated requests, once with the token and
once without: no answer may be a 5xx, and every answer must be documented (status,
content type, body schema). The host has no market data, so no generated start ever
trains: it is refused after full validation, which is the code under test.

With the token, a request generated from the document (positive mode) must be taken:
its only refusals may be those no JSON Schema can state, listed in
:func:`refusal_the_document_cannot_state`: what depends on data, state or the machine
(a data file, a strategy file, a training id, the devices) and how several values relate
(a fuzzy set naming an indicator, a start date after the end date).
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
# the token): enough to reach every validator, few enough for `make test`. Without the
# token every answer is a 401: a few requests per route show that.
EXAMPLES_PER_ROUTE = 12
EXAMPLES_WITHOUT_TOKEN = 4
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# Refusals of a request the document admits that the document cannot prevent, by status.
# Each names the state it depends on: a training id, a conflicting training or a deadline,
# the queue, the host's availability (backend), a result that does not exist yet.
STATE_STATUSES = {400, 404, 409, 429, 503}
# 422 errors that depend on data or the machine, whatever the request says.
DATA_ERRORS = {"DataFileNotFoundError", "DeviceUnavailableError"}
# 422 refusals by rules relating several values (or a strategy file's text), by the words
# of their detail: JSON Schema cannot state these.
RELATED_VALUES: dict[str, tuple[str, ...]] = {
    "InvalidRequestError": (
        "unknown strategy",  # a strategy file in the strategies directory
        "is after end_date",
        "no symbols: the request and the strategy",
    ),
    "StrategyConfigError": (
        "no fuzzy set group",
        "no indicator",
        "has no output",
        "share the feature id",
        "must be smaller than slow_period",
        "is not in the timeframes list",
        "sum to 1",
        "does not fit training.labels.source",
        "must be in increasing order",
        "feature names collide",
        "no network input on timeframe",
        "did you mean",  # a key close to one the section reads: a likely misspelling
        "parameters, above this service's ceiling",  # widths, depth and inputs together
    ),
    # KTRDR's strategy_yaml: a strategy document inside a string.
    "InvalidParameterError": ("strategy_yaml",),
}


def refusal_the_document_cannot_state(response: Any) -> bool:
    """Whether a 4xx to a document-valid request is one no JSON Schema could prevent."""
    if response.status_code in STATE_STATUSES:
        return True
    body = response.json() if response.status_code == 422 else {}
    error, detail = body.get("error"), body.get("detail", "")
    if error in DATA_ERRORS:
        return True
    if error == "StrategyConfigError" and detail.startswith("strategy_yaml"):
        return True
    return any(words in detail for words in RELATED_VALUES.get(error, ()))


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
    schema = load_schema(service)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 5, "the document lists almost no operations"
    for operation in operations:
        for mode in GenerationMode:
            try:
                fuzz_operation(service, operation, mode, with_token=with_token)
            except Unsatisfiable:
                # No invalid request exists for an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # report every failing operation
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    return failures


def fuzz_operation(
    service: Service, operation: Any, mode: GenerationMode, *, with_token: bool
) -> None:
    """One operation's generated cases in one mode, each answer checked."""
    headers = {"Authorization": f"Bearer {service.token}"} if with_token else {}
    # With the token, what the document admits must be taken (or refused for data).
    must_be_taken = with_token and mode is GenerationMode.POSITIVE

    examples = EXAMPLES_PER_ROUTE if with_token else EXAMPLES_WITHOUT_TOKEN

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(base_url=service.url, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)
        if must_be_taken and response.status_code >= 400:
            assert refusal_the_document_cannot_state(response), (
                f"{case.method} {case.path}: a request the document admits was refused "
                f"{response.status_code}: {response.text[:500]}"
            )
        if not with_token and case.operation.path not in OPEN_PATHS:
            # 401, or 422 for a body that is not JSON at all (read before the token).
            assert response.status_code in {401, 422}, f"{case.method} {case.path} is open"

    check()


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("name", ["host", "backend"])
def test_fuzzed_requests_get_documented_answers_and_no_5xx(
    fuzz_services: dict[str, Service], name: str, with_token: bool
) -> None:
    failures = fuzz(fuzz_services[name], with_token=with_token)
    assert not failures, "\n\n".join(failures)
