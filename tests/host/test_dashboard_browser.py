"""The dashboard in a real browser against the real host service process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.servers import run_host_service

pytestmark = pytest.mark.slow

TOKEN = "dashboard-s3cret"
# Long enough that the stop button finds it running after its first epochs.
LONG_TRAINING = {
    "symbol": "AAPL",
    "timeframe": "1h",
    "config": {"epochs": 40, "early_stopping": {"enabled": False}},
}


@contextmanager
def _host_training(
    tmp_path: Path, port: int, data_dir: Path, body: dict[str, Any]
) -> Iterator[tuple[str, httpx.Client, str]]:
    """A host service with the token set, a client, and the id of the training started."""
    env = {"TRAINING_HOST_API_TOKEN": TOKEN}
    with (
        run_host_service(tmp_path / "host", port, env=env, data_dir=data_dir) as host,
        httpx.Client(
            base_url=host.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        started = client.post("/trainings/start", json=body)
        assert started.status_code == 202, started.text
        yield host.url, client, started.json()["training_id"]


def _sign_in(page: Page, url: str) -> None:
    page.goto(url + "/")
    # The API answers 401 without the token: the page asks for it once.
    expect(page.locator("#token-form")).to_be_visible(timeout=10_000)
    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-form")).to_be_hidden()


def test_dashboard_follows_and_stops_a_training(
    browser_page: Page, tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    with _host_training(tmp_path, free_port, sample_data_dir, LONG_TRAINING) as started:
        url, client, training_id = started
        page = browser_page
        _sign_in(page, url)

        row = page.locator(f'#trainings tr[data-training-id="{training_id}"]')
        expect(row).to_be_visible(timeout=10_000)
        expect(row).to_contain_text("AAPL")
        expect(row).to_contain_text("this host")
        expect(page.locator("[data-role=gpu]")).to_be_visible()

        # Train and validation loss of the first finished epoch are drawn.
        points = page.locator("#loss-chart circle.point")
        expect(points.nth(1)).to_be_attached(timeout=60_000)

        # The curve is fed by the training's event stream, not by polling it.
        expect(page.locator("#detail")).to_have_attribute("data-stream", "open")
        row.locator("button.stop").click()
        expect(row.locator("[data-role=status]")).to_have_text("cancelled", timeout=30_000)
        assert client.get(f"/trainings/{training_id}/status").json()["status"] == "cancelled"
        expect(row.locator("button.resume")).to_be_visible()

        screenshot = tmp_path / "dashboard.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.read_bytes().startswith(b"\x89PNG")


def test_dashboard_shows_the_evaluations_verdict_of_a_completed_training(
    browser_page: Page, tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    short = {"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 1}}
    with _host_training(tmp_path, free_port, sample_data_dir, short) as (url, client, training_id):
        _sign_in(browser_page, url)
        page = browser_page
        row = page.locator(f'#trainings tr[data-training-id="{training_id}"]')
        expect(row.locator("[data-role=status]")).to_have_text("completed", timeout=120_000)
        row.click()
        performance = client.get(f"/trainings/{training_id}/performance").json()
        sentence = performance["evaluation"]["verdict"]["verdict"]
        # The one verdict (docs/evaluation.md), not a rule of the page's own.
        expect(page.locator("#test-metrics p.verdict")).to_have_text(
            f"Verdict: {sentence}.", timeout=30_000
        )
