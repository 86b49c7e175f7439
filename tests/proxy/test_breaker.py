"""The breaker around host calls: what counts as a failure, one probe at a time, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
import time_machine
from backend_proxy.errors import BreakerOpenError, HostRejectedError, HostUnavailableError
from backend_proxy.host_client import HostBreaker, HostClient, build_http_client
from backend_proxy.metrics import ProxyMetrics

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def make_client(handler: Handler, threshold: int = 3, recovery: float = 60) -> HostClient:
    metrics = ProxyMetrics()
    http = build_http_client(
        "http://host.test",
        read_timeout=5,
        connect_timeout=1,
        token="s3cret",
        transport=httpx.MockTransport(handler),
    )
    return HostClient(http, HostBreaker(threshold, recovery, metrics), metrics)


async def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def trip(client: HostClient, times: int = 3) -> None:
    for _ in range(times):
        with pytest.raises(HostUnavailableError):
            await client.request("GET", "/health")


def test_connection_errors_open_the_breaker_at_the_threshold() -> None:
    async def scenario() -> None:
        client = make_client(refused)
        await trip(client, 2)
        assert client.breaker.state == "closed"
        await trip(client, 1)
        assert client.breaker.state == "open"
        with pytest.raises(BreakerOpenError):
            await client.request("GET", "/health")

    asyncio.run(scenario())


def test_5xx_and_read_timeouts_are_failures_marked_as_sent() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.Response(503, json={"detail": "shutting down"}),
        httpx.ReadTimeout("slow"),
    ]

    async def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def scenario() -> None:
        client = make_client(handler)
        for _ in range(2):
            with pytest.raises(HostUnavailableError) as caught:
                await client.request("POST", "/trainings/start", json={})
            assert caught.value.sent is True
        assert client.breaker.snapshot().failure_count == 2

    asyncio.run(scenario())


def test_4xx_is_passed_on_and_is_not_a_failure() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"detail": "conflict", "error": "SessionConflictError"})

    async def scenario() -> None:
        client = make_client(handler, threshold=1)
        for _ in range(3):
            with pytest.raises(HostRejectedError) as caught:
                await client.request("POST", "/trainings/start", json={})
        assert caught.value.status_code == 409
        assert client.breaker.state == "closed"

    asyncio.run(scenario())


def test_cancelled_call_is_not_counted_as_failure() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    async def scenario() -> None:
        client = make_client(hang, threshold=1)
        task = asyncio.create_task(client.request("GET", "/health"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.breaker.state == "closed"
        assert client.breaker.snapshot().failure_count == 0

    asyncio.run(scenario())


def test_bearer_token_is_sent_when_configured() -> None:
    seen: list[str | None] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"status": "ok"})

    asyncio.run(make_client(handler).request("GET", "/health"))

    assert seen == ["Bearer s3cret"]


def test_after_recovery_timeout_one_probe_at_a_time_then_closes() -> None:
    healthy = False
    release = asyncio.Event()
    probes = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal probes
        if not healthy:
            raise httpx.ConnectError("connection refused", request=request)
        probes += 1
        await release.wait()
        return httpx.Response(200, json={"status": "ok"})

    async def scenario(traveller: time_machine.Coordinates) -> None:
        nonlocal healthy
        client = make_client(handler, recovery=60)
        await trip(client)
        snapshot = client.breaker.snapshot()
        assert snapshot.state == "open"
        assert snapshot.next_probe_at == datetime(2026, 1, 5, 12, 1, tzinfo=UTC)

        healthy = True
        traveller.shift(30)
        with pytest.raises(BreakerOpenError):  # recovery timeout not over: not even tried
            await client.request("GET", "/health")
        assert probes == 0

        traveller.shift(31)
        probe = asyncio.create_task(client.request("GET", "/health"))
        while probes == 0:
            await asyncio.sleep(0)
        # Half-open: pybreaker would let this through too; the proxy allows one probe.
        with pytest.raises(BreakerOpenError):
            await client.request("GET", "/trainings")
        assert client.breaker.snapshot().probe_in_flight is True
        release.set()
        await probe
        assert client.breaker.state == "closed"
        assert probes == 1

    with time_machine.travel(T0, tick=False) as traveller:
        asyncio.run(scenario(traveller))


def test_failed_probe_reopens_the_breaker_for_another_timeout() -> None:
    async def scenario(traveller: time_machine.Coordinates) -> None:
        client = make_client(refused, recovery=60)
        await trip(client)
        traveller.shift(61)
        with pytest.raises(HostUnavailableError):
            await client.request("GET", "/health")
        snapshot = client.breaker.snapshot()
        assert snapshot.state == "open"
        assert snapshot.next_probe_at == datetime(2026, 1, 5, 12, 2, 1, tzinfo=UTC)

    with time_machine.travel(T0, tick=False) as traveller:
        asyncio.run(scenario(traveller))
