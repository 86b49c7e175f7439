"""Sessions on a Ray cluster: a real local cluster of one head and two nodes with one GPU each.

The cluster (tests/fixtures/ray_cluster.py) is shared by every test marked ``ray``; the
test that removes a node adds one back.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
import torch
from training_sessions.requests import checkpoint_path
from training_sessions.runners.ray_cluster import RayClusterSettings, RayRunner
from training_sessions.service import SessionService
from training_sessions.store import SessionStore
from training_sessions.types import RuntimeSettings, SessionView

from tests.fixtures.ray_cluster import LoopbackCluster
from tests.fixtures.waiting import wait_until
from tests.fixtures.weights import assert_same_weights
from tests.sessions.conftest import (
    FINAL,
    LONG_RUN,
    SHORT_RUN,
    model_weights,
    request,
    train_uninterrupted,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

# Long enough to remove a node after the first checkpoint, short enough for the suite.
LOSABLE_RUN = {"epochs": 6, "batch_size": 16, "early_stopping": {"enabled": False}}
# The service as its own process, its sessions on the cluster: killed -9 mid-run by the test.
SERVICE = """
import json, sys, time
from pathlib import Path
from training_sessions.runners.ray_cluster import RayClusterSettings, RayRunner
from training_sessions.service import SessionService
from training_engine.ceilings import Ceilings
from training_sessions.types import RuntimeSettings, TrainingRequest

cfg = json.loads(sys.argv[1])
paths = ("data_dir", "models_dir", "strategies_dir", "checkpoints_dir")
values = {k: Path(v) if k in paths else v for k, v in cfg["settings"].items()}
settings = RuntimeSettings(**{**values, "ceilings": Ceilings(**values["ceilings"])})
service = SessionService(settings, runner=RayRunner(RayClusterSettings(**cfg["ray"])))
service.start()
service.submit(TrainingRequest.from_dict(cfg["request"]), training_id=cfg["training_id"])
while True:
    time.sleep(1)
"""


@pytest.fixture
def cluster_settings(ray_cluster: LoopbackCluster) -> RayClusterSettings:
    """The cluster, and a namespace of the test's own."""
    return RayClusterSettings(
        address=ray_cluster.address,
        namespace=f"test-{uuid.uuid4().hex[:8]}",
        gpus_per_session=1.0,
        cpus_per_session=1.0,
        takeover_grace_seconds=60.0,
    )


@pytest.fixture
def make_ray_service(
    cluster_settings: RayClusterSettings, make_service: Callable[..., SessionService]
) -> Callable[..., SessionService]:
    """A started service whose sessions run on the cluster."""

    def make(gpus_per_session: float = 1.0, **overrides: Any) -> SessionService:
        settings = dataclasses.replace(cluster_settings, gpus_per_session=gpus_per_session)
        return make_service(runner=RayRunner(settings), **overrides)

    return make


@pytest.fixture(scope="module")
def uninterrupted_weights(
    tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path, strategies_dir: Path
) -> dict[str, torch.Tensor]:
    """The weights of LOSABLE_RUN trained start to end by a local worker."""
    root = tmp_path_factory.mktemp("reference")
    return train_uninterrupted(root, sample_data_dir, strategies_dir, LOSABLE_RUN)


def _alive_gpu_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")}


def test_sessions_spread_over_nodes_and_report_progress_logs_node_and_attempt(
    make_ray_service: Callable[..., SessionService],
) -> None:
    service = make_ray_service(max_concurrent_jobs=2)
    ids = [service.submit(request(SHORT_RUN))[0].training_id for _ in range(2)]
    done = [service.wait_for(training_id, FINAL, 600) for training_id in ids]

    assert [view.status for view in done] == ["completed", "completed"], [v.error for v in done]
    # One GPU each: the two ran at once on the two GPU nodes.
    assert {view.node for view in done} == _alive_gpu_nodes()
    assert all(view.node_address == "127.0.0.1" and view.attempt == 1 for view in done)
    for view in done:
        assert len(service.performance(view.training_id).history) == SHORT_RUN["epochs"]
        kinds = Counter(event.kind for event in service.events(view.training_id))
        assert kinds["epoch"] == SHORT_RUN["epochs"] and kinds["result"] == 1
        assert kinds["log"] > 0  # the actor's log lines reached the event log


def test_sessions_one_after_another_run_on_one_warm_actor_that_keeps_their_data(
    make_ray_service: Callable[..., SessionService],
) -> None:
    service = make_ray_service(max_concurrent_jobs=1)
    ids = [service.submit(request(SHORT_RUN))[0].training_id for _ in range(2)]
    done = [service.wait_for(training_id, FINAL, 600) for training_id in ids]
    logs = [
        [event.data["message"] for event in service.events(view.training_id) if event.kind == "log"]
        for view in done
    ]

    assert [view.status for view in done] == ["completed", "completed"], [v.error for v in done]
    assert done[0].node == done[1].node
    # The second session ran in the first one's actor: no start, no import, data kept.
    assert any("session 1 of this worker" in line for line in logs[0])
    assert any("session 2 of this worker" in line for line in logs[1])
    assert any(line.startswith("prepared data cache miss") for line in logs[0])
    assert any(line.startswith("prepared data cache hit") for line in logs[1])


def test_fractional_gpus_pack_two_sessions_on_one_node_and_a_stop_reaches_them(
    make_ray_service: Callable[..., SessionService],
) -> None:
    service = make_ray_service(gpus_per_session=0.5, max_concurrent_jobs=3)
    ids = [service.submit(request(LONG_RUN))[0].training_id for _ in range(3)]

    def all_training() -> list[SessionView] | None:
        views = [service.get(training_id) for training_id in ids]
        training = all(v.node and v.progress.percent > 0 for v in views)
        return views if training else None

    views = wait_until(all_training, 600, "three sessions training at once")
    # Two GPU nodes, three sessions of half a GPU each training at once: one node has two.
    assert sorted(Counter(view.node for view in views).values()) == [1, 2]

    for training_id in ids:
        service.stop(training_id)
    stopped = [service.wait_for(training_id, FINAL, 120) for training_id in ids]
    assert [view.status for view in stopped] == ["cancelled"] * 3
    assert all(view.checkpoint_path for view in stopped)  # checkpointed on its node


def test_session_whose_node_dies_resumes_once_on_another_node_with_the_same_weights(
    ray_cluster: LoopbackCluster,
    make_ray_service: Callable[..., SessionService],
    runtime_settings: RuntimeSettings,
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    service = make_ray_service(max_concurrent_jobs=1)
    service.submit(request(LOSABLE_RUN), training_id="node-loss")
    wait_until(checkpoint_path(runtime_settings, "node-loss").is_file, 600, "a first checkpoint")
    first = service.get("node-loss")
    assert first.status == "running" and first.node is not None and first.attempt == 1

    ray_cluster.remove(first.node)
    done = service.wait_for("node-loss", FINAL, 600)
    ray_cluster.add_gpu_node()

    assert done.status == "completed", done.error
    assert done.attempt == 2 and done.resume_count == 1
    assert done.node is not None and done.node != first.node
    events = service.events("node-loss")
    assert Counter(event.kind for event in events)["result"] == 1  # completed once
    statuses = [event.data["status"] for event in events if event.kind == "status"]
    assert statuses == ["queued", "running", "interrupted", "queued", "running", "completed"]
    assert_same_weights(model_weights(done.model_path), uninterrupted_weights)


def test_service_killed_mid_run_is_restarted_and_its_session_resumes_once(
    cluster_settings: RayClusterSettings,
    make_ray_service: Callable[..., SessionService],
    runtime_settings: RuntimeSettings,
    tmp_path: Path,
    uninterrupted_weights: dict[str, torch.Tensor],
) -> None:
    config = {
        "settings": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in dataclasses.asdict(runtime_settings).items()
            if key != "log_dir"
        },
        "ray": dataclasses.asdict(cluster_settings),
        "request": request(LOSABLE_RUN).to_dict(),
        "training_id": "restart",
    }
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE, json.dumps(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        store = SessionStore(runtime_settings.database_url)

        def first_epoch_stored() -> bool:
            if process.poll() is not None:  # the service died: say so now, not in 10 minutes
                raise AssertionError(
                    f"the service exited: {(tmp_path / 'service.log').read_text()}"
                )
            return _has_epoch(store, "restart")

        wait_until(first_epoch_stored, 600, "the first epoch stored")
        store.dispose()
    finally:
        process.kill()
        process.wait(30)
        log.close()
    RayRunner(cluster_settings).connect()  # this process may not have joined the cluster yet
    first_actor = _actor_holding(cluster_settings.namespace, "restart", 1)
    assert first_actor is not None  # detached: it trains on without the service

    service = make_ray_service(max_concurrent_jobs=1)
    done = service.wait_for("restart", FINAL, 600)

    assert done.status == "completed", done.error
    assert done.attempt == 2 and done.resume_count == 1
    assert Counter(event.kind for event in service.events("restart"))["result"] == 1
    with pytest.raises(ValueError):  # the first attempt was stopped and ended, not left running
        ray.get_actor(first_actor, namespace=cluster_settings.namespace)
    assert_same_weights(model_weights(done.model_path), uninterrupted_weights)


def _actor_holding(namespace: str, training_id: str, attempt: int) -> str | None:
    """The name of the actor in ``namespace`` that runs ``attempt`` of the session now."""
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] != namespace:
            continue
        actor = ray.get_actor(entry["name"], namespace=namespace)
        holds = ray.get(actor.current.remote(), timeout=60)
        if holds is not None and tuple(holds) == (training_id, attempt, False):
            return str(entry["name"])
    return None


def _has_epoch(store: SessionStore, training_id: str) -> bool:
    try:
        return bool(store.epochs(training_id))
    except Exception:  # the tables are not created yet
        return False
