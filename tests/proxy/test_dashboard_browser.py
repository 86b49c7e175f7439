"""The backend's dashboard in a real browser, with the host service off."""

from __future__ import annotations

import pytest
from backend_proxy.config import Settings
from playwright.sync_api import Page, expect

from tests.conftest import find_free_port
from tests.proxy.conftest import run_backend

pytestmark = pytest.mark.slow


def test_dashboard_shows_open_breaker_and_local_fallback(
    browser_page: Page, proxy_settings: Settings
) -> None:
    # Nothing listens on this port: the host is off.
    settings = proxy_settings.model_copy(
        update={"training_host_service_url": f"http://127.0.0.1:{find_free_port()}"}
    )
    with run_backend(settings) as client:
        page = browser_page
        page.goto(str(client.base_url) + "/")
        expect(page.locator("[data-role=breaker]")).to_have_text("open", timeout=20_000)
        expect(page.locator("[data-role=reachability]")).to_have_text("unreachable")

        started = client.post("/api/trainings/start", json={"config": {"epochs": 1}})
        assert started.status_code == 202, started.text
        body = started.json()
        assert body["fallback_reason"] == "breaker_open"
        row = page.locator(f'#trainings tr[data-training-id="{body["training_id"]}"]')
        expect(row).to_contain_text("local fallback (breaker_open)", timeout=10_000)
