"""``TRAINING_HOST_EXECUTOR=ray``: the real host service trains on a local Ray cluster's nodes.

The cluster (tests/fixtures/ray_cluster.py) has two nodes with one logical GPU each.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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

RAY_CLI = Path(sys.executable).with_name("ray")

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


class RebootingCluster:
    """A Ray head and one 1-GPU node as ``ray start`` processes of the test's own, stopped
    (killed, as a machine that loses power) and started again at the same address, as
    docs/cluster.md starts them.

    Not the shared cluster: that one cannot lose its head. Token authentication is off on
    every process (Ray 2.60's ``ray start --head`` turns it on by default).
    """

    def __init__(self) -> None:
        self.port = find_free_port()
        # Short: Ray's unix sockets live under it (at most 107 characters a path).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))
        # `ray start --address` refuses a cluster said to be local (LOOPBACK_CLUSTER_ENV).
        self.env = {
            **os.environ,
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
            "RAY_AUTH_MODE": "disabled",
        }
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._spawn(
            "--head",
            "--port",
            str(self.port),
            "--include-dashboard",
            "false",
            "--num-cpus",
            "0",
            "--num-gpus",
            "0",
            "--temp-dir",
            str(self.temp_dir),
        )
        wait_until(self._head_listens, 120, f"the Ray head on {self.address}", interval=0.5)
        self._spawn("--address", self.address, "--num-cpus", "2", "--num-gpus", "1")

    def stop(self) -> None:
        for process in self._processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        self._processes.clear()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _spawn(self, *args: str) -> None:
        command = [str(RAY_CLI), "start", "--block", "--node-ip-address", "127.0.0.1", *args]
        log = (self.temp_dir / "ray-start.log").open("ab")
        with log:
            process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._processes.append(process)

    def _head_listens(self) -> bool:
        if any(p.poll() is not None for p in self._processes):
            log = (self.temp_dir / "ray-start.log").read_text(errors="replace")
            raise AssertionError("a ray start process exited:\n" + log[-3000:])
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0


@pytest.fixture
def rebooting_cluster() -> Iterator[RebootingCluster]:
    cluster = RebootingCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def test_the_head_stopped_and_started_loses_no_session_and_runs_none_twice(
    rebooting_cluster: RebootingCluster, tmp_path: Path, sample_data_dir: Path
) -> None:
    env = {
        "RAY_AUTH_MODE": "disabled",
        # Ray ends a driver whose head stays away this long (60 s by default).
        "RAY_gcs_rpc_server_reconnect_timeout_s": "5",
        "TRAINING_HOST_EXECUTOR": "ray",
        "TRAINING_HOST_RAY_ADDRESS": rebooting_cluster.address,
        "TRAINING_HOST_GPUS_PER_SESSION": "1",
        "TRAINING_HOST_MAX_CONCURRENT_JOBS": "1",
    }
    # Long enough not to end before the head is stopped at its second epoch (small
    # batches: a 1,786-sample epoch takes a few tenths of a second even on a quiet machine).
    config = {"epochs": 30, "batch_size": 8, "early_stopping": {"enabled": False}}
    body = {**QUICK_BODY, "config": config}
    with run_host_service(tmp_path / "host", find_free_port(), env, sample_data_dir) as host:
        client = httpx.Client(base_url=host.url, timeout=60)
        first = client.post("/trainings/start", json=body).json()["training_id"]
        wait_until(
            lambda: client.get(f"/trainings/{first}/status").json()["progress"]["epoch"] >= 2,
            300,
            "the first session training on the cluster",
        )

        rebooting_cluster.stop()
        # Ray ends the service's process once its head is gone: it is started again, as
        # systemd or launchd would, while the head is still down.
        host.process.wait(timeout=120)
        host.restart()
        waiting = client.get(f"/trainings/{first}/status").json()
        second = client.post("/trainings/start", json=QUICK_BODY)
        health = client.get("/health/detailed").json()

        rebooting_cluster.start()
        done = [
            wait_until(
                lambda training_id=training_id: (
                    (body := client.get(f"/trainings/{training_id}/status").json())["status"]
                    in FINAL
                    and body
                ),
                300,
                f"{training_id} final once the head is back",
            )
            for training_id in (first, second.json()["training_id"])
        ]
        events = client.get(f"/trainings/{first}/events").text

    assert waiting["status"] == "queued", waiting
    assert second.status_code == 202, second.text
    assert health["status"] == "degraded" and health["cluster"]["reachable"] is False
    assert "ray cluster unreachable" in health["problems"]
    assert [d["status"] for d in done] == ["completed", "completed"], done
    # The first resumed from its checkpoint as a new attempt, once; its result came once.
    assert done[0]["attempt"] == 2 and done[0]["resume_count"] == 1
    assert events.count("event: result") == 1
    assert "waiting in the queue: the Ray cluster" in events
