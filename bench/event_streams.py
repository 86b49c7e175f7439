"""Benchmark the host's event streams: how many it holds, and what they cost a status read.

Starts the real service (``python -m training_host``) on a free port, with one training
that stays open and idle: started, interrupted by a SIGTERM, and left ``interrupted``
(``resume_interrupted`` false) by the restarted service, so its streams wait on the event
log without a worker taking a core. Then, for each count of ``--streams``, it opens that
many streams of it, checks they all answered 200, and reports the p50 and p99 of
``GET /trainings`` while they stay open. ``--cap`` sets the service's stream limits (the
total, and per client, as every stream comes from this one address); past them a stream
is refused with 429, and the counts of opened and refused streams are reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from training_engine.sample_data import write_sample_data  # noqa: E402

from bench.host_service import percentile, wait_training  # noqa: E402
from tests.conftest import find_free_port  # noqa: E402
from tests.fixtures.servers import run_host_service  # noqa: E402
from tests.fixtures.waiting import wait_until  # noqa: E402

IDLE_ID = "idle-stream-target"
ENDLESS = {"epochs": 10_000, "early_stopping": {"enabled": False}}


def interrupted_training(root: Path, port: int, env: dict[str, str]) -> None:
    """Leave one training ``interrupted`` in the service's database under ``root``."""
    with run_host_service(root, port, env, root / "data") as service:
        client = httpx.Client(base_url=service.url, timeout=30)
        body = {"training_id": IDLE_ID, "symbol": "AAPL", "timeframe": "1h", "config": ENDLESS}
        client.post("/trainings/start", json=body).raise_for_status()
        wait_training(client, IDLE_ID)
        service.terminate()  # SIGTERM: the running session is checkpointed as interrupted


async def hold_stream(client: httpx.AsyncClient, opened: asyncio.Queue[int]) -> None:
    """Open one stream, report its status, and read it until cancelled."""
    async with client.stream("GET", f"/trainings/{IDLE_ID}/events") as response:
        await opened.put(response.status_code)
        async for _chunk in response.aiter_raw():
            pass


async def measure(url: str, streams: int, requests: int) -> tuple[dict[int, int], list[float]]:
    """Open ``streams`` streams, then time ``requests`` list calls while they are open."""
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    timeout = httpx.Timeout(60.0, read=None)
    async with (
        httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as streaming,
        httpx.AsyncClient(base_url=url, timeout=60.0) as asking,
    ):
        opened: asyncio.Queue[int] = asyncio.Queue()
        holders = [asyncio.create_task(hold_stream(streaming, opened)) for _ in range(streams)]
        statuses: dict[int, int] = {}
        for _ in range(streams):
            status = await opened.get()
            statuses[status] = statuses.get(status, 0) + 1
        await asyncio.sleep(2.0)  # past every stream's first read of its backlog
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = await asking.get("/trainings")
            samples.append(time.perf_counter() - started)
            response.raise_for_status()
        for holder in holders:
            holder.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
    return statuses, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[0, 100, 400, 512])
    parser.add_argument("--requests", type=int, default=100, help="list calls per count")
    parser.add_argument("--cap", type=int, default=None, help="the service's stream limits")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        root = Path(tmp)
        write_sample_data(root / "data", symbols=("AAPL",), timeframes=("1h",))
        env = {"TRAINING_HOST_LOG_LEVEL": "error", "TRAINING_HOST_RESUME_INTERRUPTED": "false"}
        if args.cap is not None:
            env["TRAINING_HOST_MAX_EVENT_STREAMS"] = str(args.cap)
            env["TRAINING_HOST_MAX_EVENT_STREAMS_PER_CLIENT"] = str(args.cap)
        port = find_free_port()
        print("leaving one training interrupted ...", flush=True)
        interrupted_training(root, port, env)
        with run_host_service(root, port, env, root / "data") as service:
            status = httpx.get(f"{service.url}/trainings/{IDLE_ID}/status").json()["status"]
            wait_until(lambda: status == "interrupted", 1, f"{IDLE_ID} interrupted ({status})")
            for count in args.streams:
                statuses, samples = asyncio.run(measure(service.url, count, args.requests))
                print(
                    f"streams={count:>4}  answered={statuses}  GET /trainings "
                    f"p50={percentile(samples, 50) * 1000:7.1f} ms  "
                    f"p99={percentile(samples, 99) * 1000:7.1f} ms",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
