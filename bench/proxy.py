"""Backend proxy latency: its overhead on status calls, breaker-open starts, failover time.

Starts the real host service and the backend (``backend-proxy serve``), each in
its own process as deployed, on generated sample data, then measures:

1. ``GET status`` of one finished training, directly from the host and through
   the proxy, interleaved so background load hits both alike: p50/p99 and the
   proxy's overhead (difference of the medians).
2. The start decision with the breaker open: in-process (``HostBreaker.guard``
   refusing) and a full ``POST /api/trainings/start`` that falls back locally
   (decision, routing-table write and the local runtime's validated submit).
3. Time from SIGKILL of the host to the first start answered ``routed_to: local``.

    python bench/proxy.py            # defaults below
    python bench/proxy.py --calls 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the test fixtures start servers the way tests do

from backend_proxy.breaker import HostBreaker  # noqa: E402
from backend_proxy.errors import BreakerOpenError  # noqa: E402
from backend_proxy.metrics import ProxyMetrics  # noqa: E402
from training_engine.sample_data import write_sample_data  # noqa: E402

from tests.conftest import find_free_port  # noqa: E402
from tests.fixtures.servers import run_host_service, run_service  # noqa: E402
from tests.fixtures.waiting import wait_until  # noqa: E402

TRAINING = {"strategy": "momentum_mlp", "config": {"epochs": 1}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure the backend proxy: status latency direct vs through the proxy (p50/p99), "
            "start latency with the breaker open, and time from killing the host to the "
            "first local fallback."
        )
    )
    parser.add_argument("--calls", type=int, default=1000, help="status calls per side")
    parser.add_argument("--starts", type=int, default=20, help="starts with the breaker open")
    return parser.parse_args()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, samples: list[float]) -> float:
    p50 = percentile(samples, 0.5) * 1000
    print(f"  {name:<34} p50 {p50:7.3f} ms   p99 {percentile(samples, 0.99) * 1000:7.3f} ms")
    return p50


def backend_env(tmp: Path, data_dir: Path, host_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "USE_TRAINING_HOST_SERVICE": "true",
        "TRAINING_HOST_SERVICE_URL": host_url,
        "BACKEND_HOST_SERVICE_CONFIG_FILE": str(tmp / "absent.yaml"),
        "BACKEND_DATABASE_URL": f"sqlite:///{tmp / 'backend.sqlite3'}",
        "BACKEND_DATA_DIR": str(data_dir),
        "BACKEND_MODELS_DIR": str(tmp / "models"),
        "BACKEND_CHECKPOINTS_DIR": str(tmp / "checkpoints"),
        "BACKEND_STRATEGIES_DIR": str(REPO_ROOT / "config" / "strategies"),
        "BACKEND_LOCAL_MAX_QUEUE_SIZE": "1000",
        "OMP_NUM_THREADS": "1",
    }
    env.update(extra)
    return env


@contextmanager
def run_backend(env: dict[str, str]) -> Iterator[httpx.Client]:
    """``backend-proxy serve`` in its own process, as deployed; yields a client to it."""
    port = find_free_port()
    command = [sys.executable, "-m", "backend_proxy", "serve", "--port", str(port)]
    log_path = Path(env["BACKEND_MODELS_DIR"]).parent / "backend.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        run_service(command, port, env, log_path) as backend,
        httpx.Client(base_url=backend.url, timeout=30) as client,
    ):
        yield client


def wait_finished(client: httpx.Client, path: str) -> None:
    def finished() -> bool:
        return client.get(path).json()["status"] in {"completed", "failed", "cancelled"}

    wait_until(finished, 600, f"{path} finished", interval=0.2)


def bench_status(tmp: Path, data_dir: Path, calls: int) -> None:
    print(f"status latency, {calls} calls each side, one finished training:")
    with (
        run_host_service(tmp / "host", find_free_port(), data_dir=data_dir) as host,
        run_backend(backend_env(tmp / "b1", data_dir, host.url)) as proxy,
        httpx.Client(base_url=host.url) as direct,
    ):
        training_id = proxy.post("/api/trainings/start", json=TRAINING).json()["training_id"]
        wait_finished(proxy, f"/api/trainings/{training_id}/status")
        direct_samples: list[float] = []
        proxy_samples: list[float] = []
        for i in range(calls + 50):
            pairs = [
                (direct, f"/trainings/{training_id}/status", direct_samples),
                (proxy, f"/api/trainings/{training_id}/status", proxy_samples),
            ]
            for client, path, samples in pairs if i % 2 else reversed(pairs):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                if i >= 50:  # warm-up
                    samples.append(time.perf_counter() - started)
    direct_p50 = report("direct to host", direct_samples)
    proxy_p50 = report("through the proxy", proxy_samples)
    print(f"  proxy overhead at p50: {proxy_p50 - direct_p50:.3f} ms (target <= 2 ms)")


def bench_breaker_open(tmp: Path, data_dir: Path, starts: int) -> None:
    print("start with the breaker open:")
    breaker = HostBreaker(1, 3600, ProxyMetrics())

    async def trip() -> None:
        try:
            with breaker.guard():
                raise ConnectionError("down")
        except ConnectionError:
            pass

    asyncio.run(trip())
    decisions: list[float] = []
    for _ in range(10_000):
        started = time.perf_counter()
        try:
            with breaker.guard():
                pass
        except BreakerOpenError:
            decisions.append(time.perf_counter() - started)
    report("decision (in process)", decisions)

    dead = f"http://127.0.0.1:{find_free_port()}"
    env = backend_env(
        tmp / "b2",
        data_dir,
        dead,
        BACKEND_BREAKER_FAILURE_THRESHOLD="1",
        BACKEND_BREAKER_RECOVERY_TIMEOUT_SECONDS="3600",
        BACKEND_HEALTH_CHECK_INTERVAL_SECONDS="0.05",
    )
    with run_backend(env) as proxy:
        while proxy.get("/api/training-host/status").json()["breaker"]["state"] != "open":
            time.sleep(0.05)
        samples: list[float] = []
        for _ in range(starts):
            started = time.perf_counter()
            body = proxy.post("/api/trainings/start", json=TRAINING).json()
            samples.append(time.perf_counter() - started)
            assert body["fallback_reason"] == "breaker_open", body
            proxy.post(f"/api/trainings/{body['training_id']}/stop")
    report("HTTP start, local fallback", samples)


def bench_failover(tmp: Path, data_dir: Path) -> None:
    print("failover (default health interval 10 s, threshold 3):")
    with (
        run_host_service(tmp / "host2", find_free_port(), data_dir=data_dir) as host,
        run_backend(backend_env(tmp / "b3", data_dir, host.url)) as proxy,
    ):
        host.kill()
        killed = time.perf_counter()
        while True:
            body = proxy.post("/api/trainings/start", json=TRAINING).json()
            if body.get("routed_to") == "local":
                break
        elapsed = time.perf_counter() - killed
        proxy.post(f"/api/trainings/{body['training_id']}/stop")
    print(f"  kill -> first local fallback: {elapsed * 1000:.1f} ms ({body['fallback_reason']})")


def main() -> None:
    args = parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data_dir = tmp / "data"
        write_sample_data(data_dir)
        bench_status(tmp, data_dir, args.calls)
        bench_breaker_open(tmp, data_dir, args.starts)
        bench_failover(tmp, data_dir)


if __name__ == "__main__":
    main()
