"""The backend's dashboard in a real browser: host off, host killed, models of fallback runs."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from backend_proxy.config import Settings
from playwright.sync_api import Dialog, Page, expect

from tests.conftest import find_free_port
from tests.fixtures.servers import run_host_service
from tests.proxy.conftest import SMALL_TRAINING, host_settings, run_backend, wait_for_status

pytestmark = pytest.mark.slow

# Outlasts the host's kill and restart; stopped at the test's end.
SLOW_TRAINING = {
    "strategy": "momentum_mlp",
    "config": {"epochs": 60, "early_stopping": {"enabled": False}},
}
DURATION = re.compile(r"^\d+ (s|min \d+ s|h \d+ min)$")
# Every 100 ms, what the row says: its status, ETA and whether it offers an active Stop.
RECORD_ROW = """(id) => {
  window.rowSeen = [];
  window.rowRecorder = setInterval(() => {
    const row = document.querySelector(`#trainings tr[data-training-id="${id}"]`);
    if (!row) return;
    window.rowSeen.push({
      status: row.querySelector("[data-role=status]").textContent,
      eta: row.querySelector("[data-role=eta]").textContent,
      stop: row.querySelector("button.stop") !== null,
      detailEta: document.querySelector("[data-role=detail-eta]").textContent,
    });
  }, 100);
}"""
STOP_RECORDING = "() => { clearInterval(window.rowRecorder); return window.rowSeen; }"


def _host_off(settings: Settings) -> Settings:
    # Nothing listens on this port: the host is off.
    return settings.model_copy(
        update={"training_host_service_url": f"http://127.0.0.1:{find_free_port()}"}
    )


def test_dashboard_shows_open_breaker_and_local_fallback(
    browser_page: Page, proxy_settings: Settings
) -> None:
    with run_backend(_host_off(proxy_settings)) as client:
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


def test_dashboard_shows_a_killed_host_unreachable_then_the_resumed_training(
    browser_page: Page, proxy_settings: Settings, tmp_path: Path, sample_data_dir: Path
) -> None:
    with run_host_service(tmp_path / "host", find_free_port(), data_dir=sample_data_dir) as host:
        settings = host_settings(proxy_settings, host, breaker_recovery_timeout_seconds=3.0)
        with run_backend(settings) as backend:
            page = browser_page
            page.goto(str(backend.base_url) + "/")
            started = backend.post("/api/trainings/start", json=SLOW_TRAINING)
            assert started.status_code == 202, started.text
            training_id = started.json()["training_id"]
            row = page.locator(f'#trainings tr[data-training-id="{training_id}"]')
            row.click()
            points = page.locator("#loss-chart g[data-series=val_loss] circle.point")
            # A worker's start (a process, torch, the data) takes a while on a loaded machine.
            expect(points.first).to_be_attached(timeout=120_000)
            expect(row.locator("[data-role=eta]")).to_have_text(DURATION)

            drawn = points.count()
            host.kill()
            status = row.locator("[data-role=status]")
            expect(status).to_have_text("host unreachable", timeout=30_000)
            page.evaluate(RECORD_ROW, training_id)
            expect(row.locator("[data-role=last-known]")).to_contain_text("last known: running")
            expect(page.locator("#detail-note")).to_contain_text("Host unreachable since")
            api_view = backend.get(f"/api/trainings/{training_id}/status").json()
            # Long enough for several polls of the list while the host stays down.
            page.wait_for_timeout(3_000)
            seen: list[dict[str, Any]] = page.evaluate(STOP_RECORDING)

            host.restart()
            # Settled without a user action: the host resumed it, and the page follows it again.
            expect(status).to_have_text(re.compile("^(queued|running)$"), timeout=90_000)
            expect(points.nth(drawn)).to_be_attached(timeout=90_000)
            expect(row.locator("[data-role=eta]")).to_have_text(DURATION, timeout=30_000)
            expect(page.locator("#detail-note")).to_be_hidden()
            backend.post(f"/api/trainings/{training_id}/stop")
            wait_for_status(backend, training_id, {"cancelled"}, 60)

    assert api_view["status"] == "host_unreachable"
    assert api_view["last_known_status"] == "running"
    assert api_view["progress"]["eta_seconds"] is None
    assert len(seen) >= 10
    assert all(s["status"] == "host unreachable" for s in seen), seen
    assert all(s["eta"] == "—" and s["detailEta"] == "—" and not s["stop"] for s in seen), seen


def _accept(dialog: Dialog) -> None:
    dialog.accept()


def test_dashboard_lists_downloads_and_deletes_models(
    browser_page: Page, proxy_settings: Settings
) -> None:
    with run_backend(_host_off(proxy_settings)) as client:
        old = client.post("/api/trainings/start", json={**SMALL_TRAINING, "config": {"epochs": 1}})
        new = client.post("/api/trainings/start", json={**SMALL_TRAINING, "config": {"epochs": 1}})
        old_id, new_id = old.json()["training_id"], new.json()["training_id"]
        for training_id in (old_id, new_id):
            wait_for_status(client, training_id, {"completed"})
        models = {m["training_id"]: m for m in client.get("/api/models").json()["models"]}
        old_model, new_model = models[old_id]["model_id"], models[new_id]["model_id"]

        page = browser_page
        page.goto(str(client.base_url) + "/")
        new_row = page.locator(f'#models tr[data-model-id="{new_model}"]')
        old_row = page.locator(f'#models tr[data-model-id="{old_model}"]')
        expect(new_row).to_contain_text("momentum_mlp", timeout=20_000)

        # Tags set on the training's detail show on its row and on its model.
        training_row = page.locator(f'#trainings tr[data-training-id="{new_id}"]')
        training_row.click()
        expect(page.locator("#detail-id")).to_have_text(new_id)
        page.fill("#tags-input", "nightly, eurusd")
        page.click("#tags-form button[type=submit]")
        expect(training_row.locator("[data-role=tags]")).to_have_text("nightly, eurusd")
        assert client.get(f"/api/trainings/{new_id}/status").json()["tags"] == ["nightly", "eurusd"]
        expect(new_row.locator("[data-role=model-tags]")).to_have_text(
            "nightly, eurusd", timeout=10_000
        )
        # The verdict as the models API gives it ("—" where it gives none).
        expect(new_row.locator("[data-role=model-verdict]")).to_have_text(
            models[new_id]["verdict"] or "—"
        )

        with page.expect_download() as download_info:
            new_row.locator("button.download").click()
        download = download_info.value
        assert download.suggested_filename == f"{new_model}.tar.gz"
        with tarfile.open(fileobj=io.BytesIO(Path(download.path()).read_bytes())) as archive:
            assert any(name.endswith("metadata.json") for name in archive.getnames())

        # Still the model of a training: the API's 409 is shown as it says it.
        page.on("dialog", _accept)
        old_row.locator("button.delete-model").click()
        refused = client.delete(f"/api/models/{old_model}")
        assert refused.status_code == 409
        message = page.locator("[data-role=message].error")
        expect(message).to_contain_text(refused.json()["detail"], timeout=10_000)
        message.locator("button.dismiss").click()
        expect(message).to_have_count(0)

        page.locator(f'#trainings tr[data-training-id="{old_id}"] button.delete-training').click()
        expect(page.locator(f'#trainings tr[data-training-id="{old_id}"]')).to_have_count(
            0, timeout=10_000
        )
        old_row.locator("button.delete-model").click()
        expect(old_row).to_have_count(0, timeout=10_000)
        expect(new_row).to_be_visible()
        listed = [m["model_id"] for m in client.get("/api/models").json()["models"]]
        assert old_model not in listed
        assert new_model in listed
