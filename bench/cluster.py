"""Many small trainings submitted at once through the host: wall time, fixed cost, training share.

Each row starts the real host service (``python -m training_host``) on a free port with
generated sample data (AAPL 1h) and submits ``--sessions`` 3-epoch ``momentum_mlp``
trainings at once, twice on the same service: *cold* (the first batch: workers start,
data is prepared) and *warm* (the second batch, right after). Before them, one session
alone on the same service gives the reference the ratio is taken against (*one*).

Rows (``--rows``):

* ``before``: what the host did before issue 21: a fresh worker process per session
  (``worker_max_sessions`` 1), no prepared-data cache, each worker with torch's default
  threads (every core), however many sessions run at once.
* ``local``: warm workers, the prepared-data cache, threads = cores / concurrent sessions.
* ``ray``: the host's Ray executor on the cluster at ``--ray-address``; or, with
  ``--ray-nodes 1 3``, the Ray runner on a local cluster of 1 and 3 nodes
  (``bench/cluster_ray.py``, its own table).

Each at ``--concurrency`` 1 and 2 (``max_concurrent_jobs``). Per session, from its status
and its log's timestamps: *before* = launch -> first batch (worker start, imports,
data, model), *after* = last batch -> completed (evaluation, saving), *training* = first
-> last batch. *share* = the sum of training over wall time x concurrency.

Goal on the 2-core reference machine (issue 21): twelve sessions well under a third of
47.6 s, and twelve at two concurrent at most 4x one session measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from training_engine.sample_data import write_sample_data  # noqa: E402

from tests.conftest import find_free_port  # noqa: E402
from tests.fixtures.servers import host_service_env, run_service  # noqa: E402

RUN = {"epochs": 3}
FINAL = {"completed", "failed", "cancelled"}
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"

CORES = os.cpu_count() or 1
# The host's settings for each row, by concurrency. Threads are set explicitly: the
# service runs with the tests' OMP_NUM_THREADS=1, which the default rule would follow.
# The Ray rows go here too (TRAINING_HOST_EXECUTOR=ray, see --ray-address).
ROWS: dict[str, Callable[[int], dict[str, str]]] = {
    "before": lambda concurrency: {
        "TRAINING_HOST_WORKER_MAX_SESSIONS": "1",
        "TRAINING_HOST_DATA_CACHE_BYTES": "0",
        "TRAINING_HOST_CPUS_PER_SESSION": str(CORES),
    },
    # What cpus_per_session defaults to: the cores shared by the sessions running at once.
    "local": lambda concurrency: {
        "TRAINING_HOST_CPUS_PER_SESSION": str(max(1, CORES // concurrency)),
    },
}


@dataclass(frozen=True)
class SessionTimes:
    before: float  # launch -> first batch
    training: float  # first -> last batch
    after: float  # last batch -> completed


@dataclass(frozen=True)
class BatchFigures:
    wall: float
    sessions: list[SessionTimes]


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _log_time(log: str, marker: str) -> float:
    for line in log.splitlines():
        if marker in line:
            stamp = datetime.strptime(line[:23], LOG_TIME_FORMAT).replace(tzinfo=UTC)
            return stamp.timestamp()
    raise RuntimeError(f"no '{marker}' line in the session's log:\n{log[-2000:]}")


def session_times(client: httpx.Client, training_id: str) -> SessionTimes:
    status = client.get(f"/trainings/{training_id}/status").json()
    log = client.get(f"/trainings/{training_id}/logs").text
    first, last = _log_time(log, "training: first batch"), _log_time(log, "training: last batch")
    return SessionTimes(
        before=first - _timestamp(status["started_at"]),
        training=last - first,
        after=_timestamp(status["finished_at"]) - last,
    )


def run_batch(client: httpx.Client, prefix: str, count: int) -> BatchFigures:
    """Submit ``count`` sessions at once; wall time until the last one is final."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    started = time.perf_counter()
    for training_id in ids:
        body = {"training_id": training_id, "symbol": "AAPL", "timeframe": "1h", "config": RUN}
        client.post("/trainings/start", json=body).raise_for_status()
    pending = set(ids)
    while pending:
        for training_id in list(pending):
            body = client.get(f"/trainings/{training_id}/status").json()
            status = body["status"]
            if status in FINAL:
                if status != "completed":
                    raise RuntimeError(f"{training_id} ended {status}: {body.get('error')}")
                pending.discard(training_id)
        time.sleep(0.05)
    wall = time.perf_counter() - started
    return BatchFigures(wall, [session_times(client, training_id) for training_id in ids])


def report(row: str, concurrency: int, phase: str, figures: BatchFigures, one: float) -> None:
    sessions = figures.sessions
    training = sum(times.training for times in sessions)
    print(
        f"| {row} | {concurrency} | {phase} | {len(sessions)} | {figures.wall:.1f} | "
        f"{figures.wall / one:.1f}x | {statistics.mean(t.before for t in sessions):.2f} | "
        f"{statistics.mean(t.after for t in sessions):.2f} | "
        f"{statistics.mean(t.training for t in sessions):.2f} | "
        f"{100 * training / (figures.wall * concurrency):.0f}% |",
        flush=True,
    )


def bench_row(root: Path, row: str, env: dict[str, str], concurrency: int, count: int) -> None:
    home = root / f"{row}-{concurrency}"
    settings = {**env, "TRAINING_HOST_MAX_CONCURRENT_JOBS": str(concurrency)}
    settings["TRAINING_HOST_LOG_LEVEL"] = "error"
    home.mkdir(parents=True)
    port = find_free_port()
    env = host_service_env(home, port, root / "data", settings)
    command = [sys.executable, "-m", "training_host"]
    # A loaded machine may take minutes to start it.
    with run_service(command, port, env, home / "host.log", startup_timeout=600) as service:
        client = httpx.Client(base_url=service.url, timeout=60)
        one = run_batch(client, "one", 1)
        report(row, concurrency, "one", one, one.wall)
        report(row, concurrency, "cold", run_batch(client, "cold", count), one.wall)
        report(row, concurrency, "warm", run_batch(client, "warm", count), one.wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=12, help="sessions per batch")
    parser.add_argument("--rows", nargs="+", default=["before", "local"], help="rows to run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--ray-address", help="add a 'ray' row: the host's executor on this Ray cluster"
    )
    parser.add_argument(
        "--ray-nodes", type=int, nargs="*", default=[], help="bench/cluster_ray.py's rows too"
    )
    args = parser.parse_args()
    if args.ray_nodes:
        from bench.cluster_ray import main as ray_rows

        sys.argv = [sys.argv[0], "--nodes", *map(str, args.ray_nodes)]
        sys.argv += ["--sessions", str(args.sessions)]
        ray_rows()
    rows = dict(ROWS)
    if args.ray_address:
        address = args.ray_address
        rows["ray"] = lambda concurrency: {
            "TRAINING_HOST_EXECUTOR": "ray",
            "TRAINING_HOST_RAY_ADDRESS": address,
            "TRAINING_HOST_CPUS_PER_SESSION": str(max(1, CORES // concurrency)),
        }
        args.rows.append("ray")
    print(f"load before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        write_sample_data(root / "data", symbols=("AAPL",), timeframes=("1h",))
        print(
            "| row | concurrent | batch | sessions | wall (s) | / one | before first batch (s) "
            "| after last batch (s) | training (s) | training share |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for row in args.rows:
            for concurrency in args.concurrency:
                bench_row(root, row, rows[row](concurrency), concurrency, args.sessions)
    print(f"load after: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
