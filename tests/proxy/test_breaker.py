"""The breaker around host calls: what counts as a failure, one probe at a time, recovery.

The host is an ``httpx.MockTransport`` here: these faults (a hanging call, a refused
connection at a chosen moment, a 5xx on demand) cannot be produced by the real host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
import time_machine
from backend_proxy.breaker import HostBreaker
from backend_proxy.errors import (
    BreakerOpenError,
    HostAnswerUnreadableError,
    HostConnectionsBusyError,
    HostDisabledError,
    HostRejectedError,
    HostUnavailableError,
)
from backend_proxy.host_client import HostClient
from backend_proxy.host_connections import HostConnections
from backend_proxy.metrics import ProxyMetrics
from training_sessions.contract import StartTrainingBody

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def make_client(handler: Handler, threshold: int = 3, recovery: float = 60) -> HostClient:
    metrics = ProxyMetrics()
    connections = HostConnections.open(
        "http://host.test",
        read_timeout=5,
        connect_timeout=1,
        token="s3cret",
        max_connections=10,
        max_streams=10,
        transport=httpx.MockTransport(handler),
    )
    return HostClient(connections, HostBreaker(threshold, recovery, metrics), metrics)


async def call(client: HostClient) -> str:
    """One guarded call whose 2xx answer may be any text (a training's log)."""
    return await client.logs("t1", None)


async def start(client: HostClient) -> None:
    await client.start(StartTrainingBody(training_id="t1"), T0)


async def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def trip(client: HostClient, times: int = 3) -> None:
    for _ in range(times):
        with pytest.raises(HostUnavailableError):
            await call(client)


def test_connection_errors_open_the_breaker_at_the_threshold() -> None:
    async def scenario() -> None:
        client = make_client(refused)
        await trip(client, 2)
        assert client.breaker.state == "closed"
        await trip(client, 1)
        assert client.breaker.state == "open"
        with pytest.raises(BreakerOpenError):
            await call(client)

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
                await start(client)
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
                await start(client)
        assert caught.value.status_code == 409
        assert client.breaker.state == "closed"

    asyncio.run(scenario())


def test_no_free_connection_here_is_not_a_host_failure() -> None:
    async def pool_full(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection came free", request=request)

    async def scenario() -> None:
        client = make_client(pool_full, threshold=1)
        for _ in range(3):
            with pytest.raises(HostConnectionsBusyError):
                await call(client)
        snapshot = client.breaker.snapshot()
        assert (snapshot.state, snapshot.failure_count, snapshot.last_error) == ("closed", 0, None)
        health = await client.check_health()
        assert health.ok is False
        assert health.detail is not None and health.detail.startswith("not checked")
        # The last health check stays what it was: nothing was learnt about the host.
        assert client.last_health is None

    asyncio.run(scenario())


def test_a_2xx_body_outside_the_contract_is_unreadable_not_a_failure() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok"})

    async def scenario() -> None:
        client = make_client(handler, threshold=1)
        with pytest.raises(HostAnswerUnreadableError, match="TrainingStatus"):
            await client.status("t1")
        assert client.breaker.state == "closed"

    asyncio.run(scenario())


def test_a_disabled_host_is_never_called_nor_counted() -> None:
    metrics = ProxyMetrics()
    client = HostClient(None, HostBreaker(1, 60, metrics), metrics)

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(HostDisabledError, match="disabled"):
                await client.status("t1")

    asyncio.run(scenario())

    assert client.breaker.state == "closed"
    text = metrics.render({}, {}).decode()
    assert "backend_proxy_host_calls_total{" not in text
    assert "backend_proxy_host_call_seconds_count 0.0" in text


def test_cancelled_call_is_not_counted_as_failure() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    async def scenario() -> None:
        client = make_client(hang, threshold=1)
        task = asyncio.create_task(call(client))
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

    asyncio.run(call(make_client(handler)))

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
            await call(client)
        assert probes == 0

        traveller.shift(31)
        probe = asyncio.create_task(call(client))
        while probes == 0:
            await asyncio.sleep(0)
        # Half-open: pybreaker would let this through too; the proxy allows one probe.
        with pytest.raises(BreakerOpenError):
            await client.logs("t2", None)
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
            await call(client)
        snapshot = client.breaker.snapshot()
        assert snapshot.state == "open"
        assert snapshot.next_probe_at == datetime(2026, 1, 5, 12, 2, 1, tzinfo=UTC)

    with time_machine.travel(T0, tick=False) as traveller:
        asyncio.run(scenario(traveller))
