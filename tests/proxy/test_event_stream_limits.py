"""Event streams through the backend against the real host process: they cannot starve the
backend's calls to the host, and they are capped per service and per client (issue 23)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from backend_proxy.config import Settings

from tests.fixtures.servers import HostServiceProcess
from tests.fixtures.sse import open_stream, stream_opens
from tests.fixtures.waiting import wait_until
from tests.proxy.conftest import host_settings, run_backend

pytestmark = pytest.mark.slow

# Long enough to outlast the test; stopped at its end.
LONG_TRAINING: dict[str, Any] = {
    "strategy": "momentum_mlp",
    "config": {"epochs": 500, "early_stopping": {"enabled": False}},
}


# The first event every training's stream sends: seeing it proves events are flowing.
FIRST_EVENT = b"event: status"


@dataclass
class HeldStream:
    """An event stream opened over a plain socket and then held open without being read."""

    sock: socket.socket
    status: int
    headers: dict[str, str]
    body: bytes


def _read_until(sock: socket.socket, received: bytes, done: Callable[[bytes], bool]) -> bytes:
    while not done(received):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def open_held_stream(base_url: str, path: str, client_address: str = "127.0.0.1") -> HeldStream:
    """Send the GET from ``client_address``; read the head, then the first event (200) or
    the whole error body. The connection stays open until its socket is closed."""
    url = httpx.URL(base_url)
    assert url.port is not None
    sock = socket.create_connection(
        (url.host, url.port), timeout=60, source_address=(client_address, 0)
    )
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nAccept: text/event-stream\r\n\r\n"
    )
    sock.sendall(request.encode())
    received = _read_until(sock, b"", lambda data: b"\r\n\r\n" in data)
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    status = int(status_line.split()[1])
    if status == 200:
        body = _read_until(sock, body, lambda data: FIRST_EVENT in data)
    else:
        length = int(headers["content-length"])
        body = _read_until(sock, body, lambda data: len(data) >= length)
    return HeldStream(sock, status, headers, body)


@contextmanager
def held_streams(
    base_url: str, path: str, count: int, client_address: str = "127.0.0.1"
) -> Iterator[list[HeldStream]]:
    """``count`` streams opened one after the other and held open; closed on exit."""
    with ExitStack() as closing:
        streams = []
        for _ in range(count):
            stream = open_held_stream(base_url, path, client_address)
            closing.callback(stream.sock.close)
            streams.append(stream)
        yield streams


def test_streams_beyond_the_api_pool_leave_status_and_starts_with_the_host(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    api_pool = 2
    settings = host_settings(
        proxy_settings, shared_host, host_max_connections=api_pool, max_event_streams=3 * api_pool
    )
    with run_backend(settings) as backend:
        long_id = backend.post("/api/trainings/start", json=LONG_TRAINING).json()["training_id"]
        path = f"/api/trainings/{long_id}/events"
        with held_streams(str(backend.base_url), path, 3 * api_pool) as streams:
            status = backend.get(f"/api/trainings/{long_id}/status")
            breaker = backend.get("/api/training-host/status").json()["breaker"]
            next_start = backend.post("/api/trainings/start", json=LONG_TRAINING)
            stream_statuses = [stream.status for stream in streams]
            relayed = [FIRST_EVENT in stream.body for stream in streams]
        for training_id in (long_id, next_start.json()["training_id"]):
            backend.post(f"/api/trainings/{training_id}/stop")

    assert stream_statuses == [200] * 3 * api_pool
    assert all(relayed)
    assert status.status_code == 200, status.text
    assert status.json()["host_reachable"] is True
    assert breaker["state"] == "closed"
    assert breaker["failure_count"] == 0
    assert next_start.status_code == 202, next_start.text
    assert next_start.json()["routed_to"] == "host_service"


def test_streams_past_the_client_or_the_service_cap_answer_429_with_retry_after(
    proxy_settings: Settings, shared_host: HostServiceProcess
) -> None:
    settings = host_settings(
        proxy_settings,
        shared_host,
        max_event_streams=3,
        max_event_streams_per_client=2,
        event_stream_retry_after_seconds=7,
    )
    with run_backend(settings) as backend, ExitStack() as closing:
        training_id = backend.post("/api/trainings/start", json=LONG_TRAINING).json()["training_id"]
        url, path = str(backend.base_url), f"/api/trainings/{training_id}/events"

        def held(client_address: str) -> HeldStream:
            stream = open_held_stream(url, path, client_address)
            closing.callback(stream.sock.close)
            return stream

        first_client = [held("127.0.0.1"), held("127.0.0.1")]
        past_client_cap = held("127.0.0.1")
        second_client = held("127.0.0.2")
        past_service_cap = held("127.0.0.3")
        metrics = backend.get("/metrics").text
        second_client.sock.close()

        def reopened() -> HeldStream | None:
            stream = held("127.0.0.3")
            return stream if stream.status == 200 else None

        # The closed stream's slot comes back once the backend sees its client leave.
        after_close = wait_until(reopened, 30, "a stream opened after one was closed")
        backend.post(f"/api/trainings/{training_id}/stop")

    assert [s.status for s in (*first_client, second_client)] == [200, 200, 200]
    assert FIRST_EVENT in after_close.body
    for refused, cap in (
        (past_client_cap, "BACKEND_MAX_EVENT_STREAMS_PER_CLIENT"),
        (past_service_cap, "BACKEND_MAX_EVENT_STREAMS)"),
    ):
        assert refused.status == 429, refused.body
        assert refused.headers["retry-after"] == "7"
        body = json.loads(refused.body)
        assert body["error"] == "TooManyStreamsError"
        assert cap in body["detail"]
    assert "backend_proxy_event_streams 3.0" in metrics
    assert 'backend_proxy_event_streams_refused_total{limit="client"} 1.0' in metrics
    assert 'backend_proxy_event_streams_refused_total{limit="service"} 1.0' in metrics


def test_local_training_streams_past_the_client_cap_get_429(proxy_settings: Settings) -> None:
    settings = proxy_settings.model_copy(
        update={"use_training_host_service": False, "max_event_streams_per_client": 1}
    )
    with run_backend(settings) as backend:
        training_id = backend.post("/api/trainings/start", json=LONG_TRAINING).json()["training_id"]
        path = f"/api/trainings/{training_id}/events"
        try:
            with open_stream(backend, path) as first, open_stream(backend, path) as second:
                statuses = (first.status_code, second.status_code)
                refused = second.json()
                retry_after = second.headers.get("Retry-After")
            # The closed streams give their slot back.
            wait_until(lambda: stream_opens(backend, path), 30, "a slot freed by closing")
        finally:
            backend.post(f"/api/trainings/{training_id}/stop")

    assert statuses == (200, 429)
    assert refused["error"] == "TooManyStreamsError"
    assert "BACKEND_MAX_EVENT_STREAMS_PER_CLIENT" in refused["detail"]
    assert retry_after is not None and int(retry_after) > 0
