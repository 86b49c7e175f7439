"""The dashboard in a real browser against the real host service process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.servers import run_host_service
from tests.fixtures.waiting import wait_until

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


# The row's and the detail's progress, and the chart's finished epochs, read in one tick.
READ_ONE_STORY = """(id) => {
  const row = document.querySelector(`#trainings tr[data-training-id="${id}"]`);
  return {
    row: row.querySelector("[data-role=progress]").textContent,
    detail: document.querySelector("[data-role=detail-progress]").textContent,
    rowEta: row.querySelector("[data-role=eta]").textContent,
    detailEta: document.querySelector("[data-role=detail-eta]").textContent,
    points: document.querySelectorAll(
      "#loss-chart g[data-series=val_loss] circle.point").length,
  };
}"""
DURATION = re.compile(r"^\d+ (s|min \d+ s|h \d+ min)$")


def _start_from_form(
    page: Page, client: httpx.Client, symbols: str, epochs: int, *, early_stopping: bool = True
) -> str:
    """Fill the start form, submit it, and return the id of the training it started."""
    before = {item["training_id"] for item in client.get("/trainings").json()["items"]}
    page.select_option("#start-strategy", "momentum_mlp")
    page.fill("#start-symbols", symbols)
    page.fill("#start-timeframes", "1h")
    page.fill("#start-epochs", str(epochs))
    page.set_checked("#start-early-stopping", early_stopping)
    page.click("#start-form button[type=submit]")

    def started() -> str | None:
        items = client.get("/trainings").json()["items"]
        return next((i["training_id"] for i in items if i["training_id"] not in before), None)

    training_id = wait_until(started, 30, "a training started from the form")
    expect(page.locator("#start-error")).to_be_hidden()
    return training_id


def test_dashboard_starts_stops_resumes_and_compares_runs_from_its_form(
    browser_page: Page, tmp_path: Path, free_port: int, sample_data_dir: Path
) -> None:
    env = {"TRAINING_HOST_API_TOKEN": TOKEN}
    with (
        run_host_service(tmp_path / "host", free_port, env=env, data_dir=sample_data_dir) as host,
        httpx.Client(
            base_url=host.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        page = browser_page
        _sign_in(page, host.url)
        # The strategies the host offers, its default chosen.
        offered = client.get("/strategies").json()
        expect(page.locator("#start-strategy option")).to_have_text(offered["strategies"])
        expect(page.locator("#start-strategy")).to_have_value(offered["default_strategy"])

        # A refused start shows the API's own message, as text (never parsed as HTML).
        page.fill("#start-symbols", "<b>NOPE</b>")
        page.click("#start-form button[type=submit]")
        error = page.locator("#start-error")
        expect(error).to_contain_text("<b>NOPE</b>", timeout=10_000)
        expect(error.locator("b")).to_have_count(0)

        # Every epoch asked for runs: the Stop button finds it running.
        training_id = _start_from_form(page, client, "AAPL", 40, early_stopping=False)
        row = page.locator(f'#trainings tr[data-training-id="{training_id}"]')
        expect(row.locator("[data-role=strategy]")).to_have_text("momentum_mlp")
        expect(page.locator("[data-role=detail-strategy]")).to_have_text("momentum_mlp")
        val_points = page.locator("#loss-chart g[data-series=val_loss] circle.point")
        # A worker's start (a process, torch, the data) takes a while on a loaded machine.
        expect(val_points.nth(1)).to_be_attached(timeout=120_000)
        # One story: row, detail and chart count the same finished epochs; the ETA comes
        # from the epochs measured, the same in the row and the detail.
        story = page.evaluate(READ_ONE_STORY, training_id)
        done = int(story["row"].split("/")[0])
        assert story["row"] == story["detail"]
        assert done == story["points"] >= 2
        assert DURATION.match(story["detailEta"]), story
        assert DURATION.match(story["rowEta"]), story

        row.locator("button.stop").click()
        expect(row.locator("[data-role=status]")).to_have_text("cancelled", timeout=30_000)
        expect(row.locator("[data-role=eta]")).to_have_text("—")
        stopped_at = val_points.count()

        row.locator("button.resume").click()
        expect(row.locator("[data-role=status]")).not_to_have_text("cancelled", timeout=10_000)
        # Followed again: epochs past the stop are drawn, then it is stopped for good.
        expect(val_points.nth(stopped_at)).to_be_attached(timeout=120_000)
        expect(page.locator("#detail")).to_have_attribute("data-stream", "open")
        row.locator("button.stop").click()
        expect(row.locator("[data-role=status]")).to_have_text("cancelled", timeout=30_000)

        # A second, short run; then both side by side.
        short_id = _start_from_form(page, client, "AAPL", 2)
        short_row = page.locator(f'#trainings tr[data-training-id="{short_id}"]')
        expect(short_row.locator("[data-role=status]")).to_have_text("completed", timeout=120_000)
        row.locator("input.compare").check()
        short_row.locator("input.compare").check()
        page.click("#compare-button")
        comparison = page.locator("#comparison")
        expect(comparison).to_be_visible()
        expect(comparison.locator("#compare-loss-chart g.series")).to_have_count(2)
        verdicts = comparison.locator("[data-role=compare-verdict]")
        expect(verdicts).to_have_count(2)
        performance = client.get(f"/trainings/{short_id}/performance").json()
        expect(verdicts.nth(1)).to_have_text(performance["evaluation"]["verdict"]["verdict"])
        expect(verdicts.nth(0)).to_have_text("no verdict yet")
