"""The typed host client against the real host process: every answer a contract model,
every refusal the exception that names it, the host's error body read once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from backend_proxy.breaker import HostBreaker
from backend_proxy.errors import (
    HostRejectedError,
    HostStartTooLateError,
    HostTrainingNotFoundError,
)
from backend_proxy.event_relay import RelayedStream
from backend_proxy.host_client import HostClient
from backend_proxy.host_connections import HostConnections
from backend_proxy.metrics import ProxyMetrics
from training_sessions.contract import (
    ErrorBody,
    StartMultiSymbolBody,
    StartTrainingBody,
    StartTrainingResponse,
    TrainingList,
    TrainingPerformance,
    TrainingStatus,
)

from tests.fixtures.servers import HostServiceProcess

pytestmark = pytest.mark.slow

TRAINING = {"strategy": "momentum_mlp", "config": {"epochs": 1}}


def open_client(url: str) -> HostClient:
    metrics = ProxyMetrics()
    connections = HostConnections.open(
        url, read_timeout=30, connect_timeout=1, token=None, max_connections=4, max_streams=4
    )
    return HostClient(connections, HostBreaker(3, 60, metrics), metrics)


def test_every_route_answers_a_contract_model_and_every_refusal_is_named(
    host_service: HostServiceProcess,
) -> None:
    body = StartTrainingBody.model_validate({**TRAINING, "training_id": "typed-1"})
    multi = StartMultiSymbolBody.model_validate(
        {**TRAINING, "training_id": "typed-2", "symbols": ["AAPL"], "timeframes": ["1h"]}
    )
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        client = open_client(host_service.url)
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        seen["started"] = await client.start(body, deadline)
        seen["again"] = await client.start(body, deadline)
        seen["multi"] = await client.start(multi, deadline)
        seen["status"] = await client.status("typed-1")
        seen["listed"] = await client.list_trainings(limit=500)
        seen["queued"] = await client.list_trainings(status="queued")
        events = RelayedStream(await client.open_events("typed-1", None))
        seen["first_chunk"] = await anext(aiter(events))
        await events.aclose()
        seen["performance"] = await client.performance("typed-1")
        seen["logs"] = await client.logs("typed-1", 5)
        for name, call in (
            ("missing", client.status("no-such-training")),
            (
                "too_late",
                client.start(
                    body.model_copy(update={"training_id": "typed-late"}),
                    datetime.now(UTC) - timedelta(seconds=5),
                ),
            ),
            ("conflict", client.start(body.model_copy(update={"config": {"epochs": 2}}), deadline)),
        ):
            with pytest.raises(HostRejectedError) as caught:
                await call
            seen[name] = caught.value
        seen["stopped"] = await client.stop("typed-1")
        await client.stop("typed-2")
        seen["breaker"] = client.breaker.snapshot()
        assert client._connections is not None
        await client._connections.aclose()

    asyncio.run(scenario())

    started, again = seen["started"], seen["again"]
    assert isinstance(started, StartTrainingResponse) and started.created is True
    assert isinstance(again, StartTrainingResponse) and again.created is False
    assert seen["multi"].symbols == ["AAPL"] and seen["multi"].timeframes == ["1h"]
    assert isinstance(seen["status"], TrainingStatus)
    assert seen["status"].training_id == "typed-1"
    assert isinstance(seen["listed"], TrainingList)
    assert {"typed-1", "typed-2"} <= {item.training_id for item in seen["listed"].items}
    assert all(item.status == "queued" for item in seen["queued"].items)
    assert seen["first_chunk"].startswith(b"retry:")
    assert isinstance(seen["performance"], TrainingPerformance)
    assert isinstance(seen["logs"], str)
    assert type(seen["missing"]) is HostTrainingNotFoundError
    assert seen["missing"].error == ErrorBody(
        detail="no training with id 'no-such-training'", error="SessionNotFoundError"
    )
    assert type(seen["too_late"]) is HostStartTooLateError
    assert seen["too_late"].status_code == 409
    # Another request under a known id: a 409 the proxy passes on as it is.
    assert type(seen["conflict"]) is HostRejectedError
    assert seen["conflict"].status_code == 409
    assert seen["conflict"].error is not None
    assert seen["conflict"].error.error == "SessionConflictError"
    assert seen["stopped"].stop_requested is True
    assert seen["breaker"].state == "closed" and seen["breaker"].failure_count == 0
