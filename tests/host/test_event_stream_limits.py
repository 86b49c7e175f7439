"""Event streams cannot starve the host: a cap per client and per service, one shared poller."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.conftest import find_free_port
from tests.fixtures.servers import run_host_service
from tests.fixtures.sse import open_stream, stream_opens
from tests.fixtures.waiting import wait_until
from tests.host.conftest import AppFactory, wait_for_status

pytestmark = pytest.mark.slow

# Runs until stopped: the streams that follow it never end on their own.
ENDLESS_BODY: dict[str, Any] = {
    "symbol": "AAPL",
    "timeframe": "1h",
    "config": {"epochs": 10_000, "early_stopping": {"enabled": False}},
}
# A second address of this machine: a second client to the host's eyes.
OTHER_CLIENT_ADDRESS = "127.0.0.2"


def test_streams_past_the_client_and_service_caps_get_429_with_retry_after(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    env = {
        "TRAINING_HOST_MAX_EVENT_STREAMS": "3",
        "TRAINING_HOST_MAX_EVENT_STREAMS_PER_CLIENT": "2",
    }
    with (
        run_host_service(tmp_path, find_free_port(), env=env, data_dir=sample_data_dir) as host,
        httpx.Client(base_url=host.url, timeout=30) as client,
        httpx.Client(
            base_url=host.url,
            timeout=30,
            transport=httpx.HTTPTransport(local_address=OTHER_CLIENT_ADDRESS),
        ) as other_client,
    ):
        training_id = client.post("/trainings/start", json=ENDLESS_BODY).json()["training_id"]
        path = f"/trainings/{training_id}/events"
        try:
            with ExitStack() as streams:
                first, second = (streams.enter_context(open_stream(client, path)) for _ in "ab")
                past_client_cap = streams.enter_context(open_stream(client, path))
                other = streams.enter_context(open_stream(other_client, path))
                past_service_cap = streams.enter_context(open_stream(other_client, path))
                statuses = [r.status_code for r in (first, second, other)]
                assert statuses == [200, 200, 200]
                for refused, limit in (
                    (
                        past_client_cap,
                        "2 event streams open, the limit per client (max_event_streams_per_client)",
                    ),
                    (past_service_cap, "3 event streams, its limit (max_event_streams)"),
                ):
                    assert refused.status_code == 429, "a stream past the cap was opened"
                    assert int(refused.headers["Retry-After"]) > 0
                    assert refused.json()["error"] == "TooManyStreamsError"
                    assert limit in refused.json()["detail"]
            # Closed streams give their slots back.
            wait_until(lambda: stream_opens(other_client, path), 30, "a slot freed by closing")
        finally:
            client.post(f"/trainings/{training_id}/stop")


@contextmanager
def counting_event_log_reads() -> Iterator[list[int]]:
    """Counts every read of event rows made in this process while the block runs.

    The counts and maxima a running session's recorder asks for (its log cap) are not
    reads of events: they are left out.
    """
    count = [0]
    lock = threading.Lock()

    def counted(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split()).lower()
        reads_rows = text.startswith("select training_events.")
        if reads_rows and "from training_events" in text:
            with lock:
                count[0] += 1

    event.listen(Engine, "before_cursor_execute", counted)
    try:
        yield count
    finally:
        event.remove(Engine, "before_cursor_execute", counted)


def reads_per_second(streams: int, url: str, path: str, seconds: float = 3.0) -> float:
    """Event-log reads per second while ``streams`` streams follow an idle training."""
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        for _ in range(streams):
            response = stack.enter_context(open_stream(client, path))
            assert response.status_code == 200, response.text
        time.sleep(2.0)  # past every stream's first read of the backlog, on a busy machine too
        with counting_event_log_reads() as count:
            started = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
        return count[0] / elapsed


def test_open_streams_share_one_poller_of_the_event_log(start_app: AppFactory) -> None:
    url, _app = start_app(max_concurrent_jobs=1)
    with httpx.Client(base_url=url, timeout=30) as client:
        running = client.post("/trainings/start", json=ENDLESS_BODY).json()["training_id"]
        queued = client.post("/trainings/start", json=ENDLESS_BODY).json()["training_id"]
        try:
            wait_for_status(client, running, {"running"})
            path = f"/trainings/{queued}/events"
            one = reads_per_second(1, url, path)
            many = reads_per_second(16, url, path)
        finally:
            for training_id in (queued, running):
                client.post(f"/trainings/{training_id}/stop")

    assert one > 0, "the stream never read the event log"
    # A poll loop per stream reads 16 times as often; one shared poller, as often. The
    # margin leaves room for a late first read of a backlog on a busy machine.
    assert many < 4 * one, f"{many:.1f} reads/s with 16 streams, {one:.1f} with one"
