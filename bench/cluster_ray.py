"""Benchmark sessions on a local Ray cluster: twelve small trainings submitted at once.

For a cluster of 1 and of 3 nodes (``ray.cluster_utils.Cluster`` on loopback, one CPU
per node, sessions asking one CPU each), twelve 3-epoch ``momentum_mlp`` sessions
(KTRDR's population size) go through a ``SessionService`` with the Ray runner; reported:

* wall time from the first submit to the last completion;
* the fixed cost of a session: submitted -> first progress event, last epoch -> completed
  (medians), and the share of the summed session time spent in epochs.

The local executor's rows (1 and 2 concurrent sessions, cold and warm) are
``bench/cluster.py``'s, which runs this script's rows too with ``--ray-nodes 1 3``.
Run by hand: ``python bench/cluster_ray.py [--nodes 1 3] [--sessions 12]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

THREE_EPOCHS = {"epochs": 3}


def run_on_cluster(nodes: int, sessions: int, root: Path) -> dict[str, float]:
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster
    from training_engine.sample_data import write_sample_data
    from training_sessions.runners.ray_cluster import RayClusterSettings, RayRunner
    from training_sessions.service import SessionService
    from training_sessions.types import RuntimeSettings, TrainingRequest

    from tests.conftest import find_free_port

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ["OMP_NUM_THREADS"] = "1"
    node_args = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "dashboard_port": None}
    port = find_free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**node_args, "num_cpus": 0, "gcs_server_port": port},
    )
    try:
        for _ in range(nodes):
            cluster.add_node(**node_args, num_cpus=1)
        cluster.wait_for_nodes()
        data_dir = root / "data"
        write_sample_data(data_dir)
        settings = RuntimeSettings(
            database_url=f"sqlite:///{root / 'sessions.db'}",
            data_dir=data_dir,
            models_dir=root / "models",
            strategies_dir=REPO_ROOT / "config" / "strategies",
            checkpoints_dir=root / "checkpoints",
            default_device="cpu",
            max_concurrent_jobs=nodes,
            max_queue_size=sessions,
        )
        runner = RayRunner(
            RayClusterSettings(
                address=f"127.0.0.1:{port}",
                gpus_per_session=0.0,
                cpus_per_session=1.0,
                max_idle_actors=nodes,  # as the host sets it: max_concurrent_jobs
            )
        )
        service = SessionService(settings, runner=runner)
        service.start()
        try:
            started = time.perf_counter()
            ids = [
                service.submit(TrainingRequest(config=dict(THREE_EPOCHS)))[0].training_id
                for _ in range(sessions)
            ]
            views = [
                service.wait_for(training_id, {"completed", "failed"}, 3600) for training_id in ids
            ]
            wall = time.perf_counter() - started
            assert all(view.status == "completed" for view in views), [v.error for v in views]
            return {"wall_seconds": wall, **_fixed_costs(service, ids)}
        finally:
            service.shutdown(grace_seconds=10.0)
    finally:
        ray.shutdown()
        cluster.shutdown()


def _fixed_costs(service: object, ids: list[str]) -> dict[str, float]:
    """Medians of submitted -> first progress and last epoch -> completed; share in epochs."""
    to_first, after_last, in_epochs, total = [], [], 0.0, 0.0
    for training_id in ids:
        view = service.get(training_id)  # type: ignore[attr-defined]
        events = service.events(training_id)  # type: ignore[attr-defined]
        first = next(e.created_at for e in events if e.kind in ("progress", "epoch"))
        last_epoch = [e.created_at for e in events if e.kind == "epoch"][-1]
        to_first.append((first - view.created_at).total_seconds())
        after_last.append((view.finished_at - last_epoch).total_seconds())
        history = service.performance(training_id).history  # type: ignore[attr-defined]
        in_epochs += sum(float(row.get("epoch_seconds", 0.0)) for row in history)
        total += (view.finished_at - view.created_at).total_seconds()
    return {
        "submitted_to_first_progress_s": statistics.median(to_first),
        "last_epoch_to_completed_s": statistics.median(after_last),
        "share_training": in_epochs / total if total else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--sessions", type=int, default=12)
    args = parser.parse_args()
    print(
        "| executor | nodes | sessions | wall s | submitted->first progress s "
        "| last epoch->completed s | share training |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for nodes in args.nodes:
        with tempfile.TemporaryDirectory() as tmp:
            row = run_on_cluster(nodes, args.sessions, Path(tmp))
        print(
            f"| ray | {nodes} | {args.sessions} | {row['wall_seconds']:.1f} | "
            f"{row['submitted_to_first_progress_s']:.2f} | "
            f"{row['last_epoch_to_completed_s']:.2f} | {row['share_training']:.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
