"""The backend's own bearer token (BACKEND_API_TOKEN) and body limit, on a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from backend_proxy.config import Settings
from pydantic import SecretStr

from tests.proxy.conftest import run_backend

TOKEN = "backend-s3cret-token"
# Each protected route, and what it answers with the right token (None: a 2xx body).
PROTECTED = [
    ("GET", "/api/trainings", 200, None),
    ("GET", "/api/trainings/some-id/status", 404, "TrainingNotFoundError"),
    ("POST", "/api/trainings/start", 422, "InvalidRequestError"),
    ("GET", "/api/training-host/status", 200, None),
    ("GET", "/api/strategies", 200, None),
    ("GET", "/metrics", 200, None),
]


@pytest.fixture
def guarded_backend(proxy_settings: Settings) -> Iterator[httpx.Client]:
    settings = proxy_settings.model_copy(
        update={"api_token": SecretStr(TOKEN), "use_training_host_service": False}
    )
    with run_backend(settings) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "status", "error"), PROTECTED)
def test_api_routes_need_the_token(
    guarded_backend: httpx.Client, method: str, path: str, status: int, error: str | None
) -> None:
    missing = guarded_backend.request(method, path, json={})
    wrong = guarded_backend.request(
        method, path, json={}, headers={"Authorization": "Bearer not-the-token"}
    )
    right = guarded_backend.request(
        method, path, json={"strategy": "no_such"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    for refused in (missing, wrong):
        assert refused.status_code == 401, refused.text
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json()["error"] == "AuthenticationError"
    assert right.status_code == status, right.text
    if error is not None:
        assert right.json()["error"] == error


def test_health_page_identity_and_assets_stay_open(guarded_backend: httpx.Client) -> None:
    health = guarded_backend.get("/health")
    identity = guarded_backend.get("/", headers={"Accept": "application/json"})
    page = guarded_backend.get("/", headers={"Accept": "text/html"})
    script = guarded_backend.get("/static/dashboard/dashboard.js")

    assert health.status_code == 200
    assert identity.json()["service"] == "backend-proxy"
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert script.status_code == 200


def test_without_a_token_the_api_is_open_on_loopback(proxy_settings: Settings) -> None:
    settings = proxy_settings.model_copy(update={"use_training_host_service": False})
    with run_backend(settings) as client:
        listed = client.get("/api/trainings")

    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize("token", [None, "   "], ids=["unset", "blank"])
def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path, token: str | None) -> None:
    env = {"PATH": "/usr/bin:/bin", "BACKEND_DATABASE_URL": f"sqlite:///{tmp_path}/b.sqlite3"}
    # The code under test, wherever the suite imports it from.
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    if token is not None:
        env["BACKEND_API_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "backend_proxy", "serve", "--host", "0.0.0.0", "--port", "5998"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "without an API token" in result.stderr
    assert "BACKEND_API_TOKEN" in result.stderr


def test_body_over_the_limit_is_413_like_the_host(proxy_settings: Settings) -> None:
    settings = proxy_settings.model_copy(
        update={"use_training_host_service": False, "max_body_bytes": 4096}
    )
    big = b'{"strategy": "' + b"x" * 10_000 + b'"}'

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    with run_backend(settings) as client:
        declared = client.post(
            "/api/trainings/start", content=big, headers={"content-type": "application/json"}
        )
        streamed = client.post(
            "/api/trainings/start", content=chunked(), headers={"content-type": "application/json"}
        )
        small = client.post("/api/trainings/start", json={"strategy": "no_such_strategy"})

    for refused in (declared, streamed):
        assert refused.status_code == 413, refused.text
        assert refused.json()["error"] == "RequestTooLargeError"
        assert "4096" in refused.json()["detail"]
    assert small.status_code == 422
    assert "unknown strategy 'no_such_strategy'" in small.json()["detail"]


def test_default_body_limit_is_the_hosts() -> None:
    from training_host.config import Settings as HostSettings

    assert Settings().max_body_bytes == HostSettings().max_body_bytes == 1_048_576
