"""The backend refuses what a web page could make a browser send it (issue 23, finding 4),
and its own calls to the host, under the names the host is reached by, keep working."""

from __future__ import annotations

import pytest
from backend_proxy.config import Settings

from tests.fixtures.servers import HostServiceProcess
from tests.proxy.conftest import SMALL_TRAINING, run_backend, wait_for_status

ATTACKER = "rebind.attacker.example"


def test_the_backend_refuses_a_rebinding_name_and_cross_site_writes(
    proxy_settings: Settings,
) -> None:
    with run_backend(proxy_settings) as backend:
        rebound = backend.post(
            "/api/trainings/start", json=SMALL_TRAINING, headers={"Host": ATTACKER}
        )
        cross_site = backend.post(
            "/api/trainings/start", json=SMALL_TRAINING, headers={"Origin": "http://evil.example"}
        )
        page = backend.get("/", headers={"Accept": "text/html"})
        redirect = backend.get("/health/", headers={"Host": "localhost:8000"})
        listed = backend.get("/api/trainings").json()

    assert rebound.status_code == 400 and rebound.json()["error"] == "UntrustedHostError"
    assert cross_site.status_code == 403 and cross_site.json()["error"] == "CrossSiteRequestError"
    assert listed["total"] == 0
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert redirect.status_code == 307 and redirect.headers["location"] == "/health"


def test_backend_allowed_hosts_are_read_from_one_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKEND_ALLOWED_HOSTS", "backend, research.lan")
    assert {"backend", "research.lan", "localhost"} <= Settings().host_names()


@pytest.mark.slow
def test_the_backend_reaches_the_host_by_name(
    proxy_settings: Settings, host_service: HostServiceProcess
) -> None:
    # The host is called by a name (in Docker: host.docker.internal), not an address.
    port = host_service.url.rsplit(":", 1)[1]
    settings = proxy_settings.model_copy(
        update={"training_host_service_url": f"http://localhost:{port}"}
    )
    with run_backend(settings) as backend:
        started = backend.post("/api/trainings/start", json=SMALL_TRAINING)
        assert started.status_code == 202, started.text
        final = wait_for_status(backend, started.json()["training_id"], {"completed"})

    assert final["routed_to"] == "host_service"
    assert final["host_reachable"] is True
