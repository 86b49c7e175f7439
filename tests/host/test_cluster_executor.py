"""``TRAINING_HOST_EXECUTOR=ray``: the real host service trains on a local Ray cluster's nodes.

The cluster (tests/fixtures/ray_cluster.py) has two nodes with one logical GPU each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import find_free_port
from tests.fixtures.ray_cluster import LoopbackCluster
from tests.fixtures.servers import run_host_service
from tests.fixtures.waiting import wait_until
from tests.host.conftest import FINAL, QUICK_BODY

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

LONG_BODY: dict[str, Any] = {
    **QUICK_BODY,
    "config": {"epochs": 400, "batch_size": 16, "early_stopping": {"enabled": False}},
}


def test_host_on_a_ray_cluster_shows_each_session_on_its_node_and_labels_metrics_by_node(
    ray_cluster: LoopbackCluster, tmp_path: Path, sample_data_dir: Path, browser_page: Page
) -> None:
    env = {
        "TRAINING_HOST_EXECUTOR": "ray",
        "TRAINING_HOST_RAY_ADDRESS": ray_cluster.address,
        "TRAINING_HOST_RAY_NAMESPACE": "host-test",
        "TRAINING_HOST_GPUS_PER_SESSION": "1",
        "TRAINING_HOST_MAX_CONCURRENT_JOBS": "2",
    }
    with run_host_service(tmp_path / "host", find_free_port(), env, sample_data_dir) as host:
        client = httpx.Client(base_url=host.url, timeout=60)
        long_id = client.post("/trainings/start", json=LONG_BODY).json()["training_id"]
        quick_id = client.post("/trainings/start", json=QUICK_BODY).json()["training_id"]

        def final(training_id: str) -> dict[str, Any] | None:
            body: dict[str, Any] = client.get(f"/trainings/{training_id}/status").json()
            return body if body["status"] in FINAL else None

        quick = wait_until(lambda: final(quick_id), 600, "the quick session final")
        running = wait_until(
            lambda: (body := client.get(f"/trainings/{long_id}/status").json())["node"] and body,
            600,
            "the long session placed",
        )
        health = client.get("/health/detailed").json()
        gpu = client.get("/gpu/status").json()
        metrics = client.get("/metrics").text
        # The page shows each node with the sessions on it.
        browser_page.goto(host.url + "/")
        node_box = browser_page.locator(f'[data-role=cluster-node][data-node="{running["node"]}"]')
        expect(node_box).to_contain_text(long_id[:8], timeout=30_000)
        expect(node_box).to_contain_text("127.0.0.1")
        expect(browser_page.locator("[data-role=cluster-node]")).to_have_count(
            len(health["cluster"]["nodes"])
        )
        client.post(f"/trainings/{long_id}/stop")
        stopped = wait_until(lambda: final(long_id), 120, "the long session stopped")

    assert quick["status"] == "completed", quick
    assert quick["attempt"] == 1 and quick["node_address"] == "127.0.0.1"
    # One GPU each, at once: the two sessions ran on the two GPU nodes.
    assert quick["node"] != running["node"]
    assert stopped["status"] == "cancelled"

    assert health["executor"] == "ray" and health["cluster"]["reachable"]
    nodes = {node["node"]: node for node in health["cluster"]["nodes"]}
    assert {quick["node"], running["node"]} <= nodes.keys()
    assert nodes[running["node"]]["sessions"] == [long_id]
    assert nodes[running["node"]]["gpus"] == 1 and nodes[running["node"]]["cpus"] == 2
    assert nodes[running["node"]]["memory_bytes"] > 0
    assert gpu["cluster"]["nodes"] == health["cluster"]["nodes"]
    assert (
        f'training_host_node_session{{node="{running["node"]}",node_address="127.0.0.1",'
        f'training_id="{long_id}"}} 1.0'
    ) in metrics
