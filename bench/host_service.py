"""Benchmark the training host service: /health latency idle and under load, stop latency.

Starts the real service (``python -m training_host``) on a free port with
generated sample data in a temporary folder, then reports:

* ``/health`` latency p50/p99 with no training, and with two trainings running;
* stop-to-``cancelled`` latency p50/p99 over ``--stops`` stops of running trainings.

Targets on the 2-core CPU reference machine: /health p99 <= 25 ms while two
sessions train; stop-to-cancelled p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from training_engine.sample_data import write_sample_data  # noqa: E402

from tests.conftest import find_free_port  # noqa: E402
from tests.fixtures.servers import run_host_service  # noqa: E402
from tests.fixtures.waiting import wait_until  # noqa: E402

LONG_RUN = {"epochs": 500, "batch_size": 8, "early_stopping": {"enabled": False}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def health_latencies(client: httpx.Client, requests: int) -> list[float]:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/health")
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return samples


def start_long(client: httpx.Client, training_id: str) -> None:
    body = {"training_id": training_id, "symbol": "AAPL", "timeframe": "1h", "config": LONG_RUN}
    client.post("/trainings/start", json=body).raise_for_status()


def wait_training(client: httpx.Client, training_id: str, timeout: float = 300) -> None:
    """Wait until the session is running and has reported progress (it is inside the loop)."""

    def in_loop() -> bool:
        body = client.get(f"/trainings/{training_id}/status").json()
        if body["status"] not in {"queued", "running"}:
            raise RuntimeError(f"{training_id} ended early: {body}")
        progress = body["progress"]["batch"] + body["progress"]["epoch"]
        return bool(body["status"] == "running" and progress)

    wait_until(in_loop, timeout, f"{training_id} training")


def stop_latency(client: httpx.Client, training_id: str) -> float:
    started = time.perf_counter()
    client.post(f"/trainings/{training_id}/stop").raise_for_status()
    while True:
        status = client.get(f"/trainings/{training_id}/status").json()["status"]
        if status == "cancelled":
            return time.perf_counter() - started
        if status in {"completed", "failed"}:
            raise RuntimeError(f"{training_id} ended as {status} instead of cancelled")
        time.sleep(0.01)


def report(name: str, samples: list[float]) -> None:
    print(
        f"{name:<34} n={len(samples):>4}  p50={percentile(samples, 50) * 1000:8.1f} ms  "
        f"p99={percentile(samples, 99) * 1000:8.1f} ms",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="/health requests per phase")
    parser.add_argument("--stops", type=int, default=10, help="trainings to start and stop")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-host-") as tmp:
        root = Path(tmp)
        print("writing sample data ...", flush=True)
        write_sample_data(root / "data", symbols=("AAPL",), timeframes=("1h",))
        env = {"TRAINING_HOST_MAX_CONCURRENT_JOBS": "2", "TRAINING_HOST_LOG_LEVEL": "error"}
        print("starting the host service ...", flush=True)
        with run_host_service(root, find_free_port(), env, root / "data") as service:
            client = httpx.Client(base_url=service.url, timeout=30)
            health_latencies(client, 20)  # warm-up
            report("/health, idle", health_latencies(client, args.requests))

            for training_id in ("load-a", "load-b"):
                start_long(client, training_id)
            for training_id in ("load-a", "load-b"):
                wait_training(client, training_id)
            report("/health, two trainings running", health_latencies(client, args.requests))
            for training_id in ("load-a", "load-b"):
                client.post(f"/trainings/{training_id}/stop")

            stops = []
            for i in range(args.stops):
                training_id = f"stop-{i}"
                start_long(client, training_id)
                wait_training(client, training_id)
                stops.append(stop_latency(client, training_id))
                print(f"  stop {i + 1}/{args.stops}: {stops[-1] * 1000:.0f} ms", flush=True)
            report("stop -> cancelled", stops)
            print(f"(stop mean {statistics.mean(stops) * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
