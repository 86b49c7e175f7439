"""A typed client of the training host's HTTP contract: one method per route.

Every URL of the host is written here and nowhere else. Answers are parsed once,
into ``training_sessions.contract`` models; a refusal is an exception of
``backend_proxy.errors`` whose class says what happened (the host's error body is
read once, here). Each call is one call through the breaker (``breaker.py``),
except asking about an ambiguous start, which must be possible while it is open.

API calls and event streams use two connection pools (``host_connections.py``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from training_sessions.contract import (
    ErrorBody,
    StartMultiSymbolBody,
    StartTrainingResponse,
    TrainingDeleted,
    TrainingList,
    TrainingPerformance,
    TrainingStatus,
)
from training_sessions.errors import InvalidRequestError, StartDeadlinePassedError
from training_sessions.models import ArchiveFormat, ModelDeleted, ModelDetail, ModelList

from backend_proxy.breaker import HostBreaker
from backend_proxy.errors import (
    HostAnswerUnreadableError,
    HostAtCapacityError,
    HostConnectionsBusyError,
    HostDisabledError,
    HostRejectedError,
    HostStartTooLateError,
    HostTrainingNotFoundError,
    HostUnavailableError,
)
from backend_proxy.host_connections import HostConnections
from backend_proxy.metrics import ProxyMetrics
from backend_proxy.schemas import StartBody

logger = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class HostHealth:
    """The last result of the background health check."""

    ok: bool
    checked_at: datetime
    detail: str | None


class HostClient:
    """The one way to call the host; ``connections`` None: the host is disabled here."""

    def __init__(
        self, connections: HostConnections | None, breaker: HostBreaker, metrics: ProxyMetrics
    ) -> None:
        self._connections = connections
        self.breaker = breaker
        self._metrics = metrics
        self.last_health: HostHealth | None = None
        # Since when the host has not answered (None: its last call got an answer); a
        # disabled host is never asked.
        self.unreachable_since: datetime | None = None if connections else datetime.now(UTC)

    async def start(self, body: StartBody, deadline: datetime) -> StartTrainingResponse:
        """``POST /trainings/start`` (``/trainings/start-multi-symbol`` for that body).

        The host creates nothing from it once ``deadline`` has passed.
        """
        multi = isinstance(body, StartMultiSymbolBody)
        path = "/trainings/start-multi-symbol" if multi else "/trainings/start"
        sent = body.model_copy(update={"start_deadline": deadline})
        response = await self._call(
            "POST", path, json=sent.model_dump(mode="json", exclude_none=True)
        )
        return _parse(StartTrainingResponse, response)

    async def status(self, training_id: str, *, guarded: bool = True) -> TrainingStatus:
        """``GET /trainings/{id}/status``; ``guarded=False`` asks even while the breaker is open."""
        response = await self._call("GET", _training_path(training_id, "status"), guarded=guarded)
        return _parse(TrainingStatus, response)

    async def performance(self, training_id: str) -> TrainingPerformance:
        response = await self._call("GET", _training_path(training_id, "performance"))
        return _parse(TrainingPerformance, response)

    async def stop(self, training_id: str) -> TrainingStatus:
        response = await self._call("POST", _training_path(training_id, "stop"))
        return _parse(TrainingStatus, response)

    async def resume(self, training_id: str) -> TrainingStatus:
        response = await self._call("POST", _training_path(training_id, "resume"))
        return _parse(TrainingStatus, response)

    async def logs(self, training_id: str, tail: int | None) -> str:
        params = {"tail": tail} if tail is not None else None
        response = await self._call("GET", _training_path(training_id, "logs"), params=params)
        return response.text

    async def list_trainings(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> TrainingList:
        """``GET /trainings``: every training of the host, started here or not."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        return _parse(TrainingList, await self._call("GET", "/trainings", params=params))

    async def delete_training(self, training_id: str) -> TrainingDeleted:
        """``DELETE /trainings/{id}``: its rows and files (its model stays)."""
        response = await self._call("DELETE", f"/trainings/{training_id}")
        return _parse(TrainingDeleted, response)

    async def set_tags(self, training_id: str, tags: list[str]) -> TrainingStatus:
        """``PATCH /trainings/{id}`` with ``tags`` (replaces the set)."""
        response = await self._call("PATCH", f"/trainings/{training_id}", json={"tags": tags})
        return _parse(TrainingStatus, response)

    async def list_models(self, filters: dict[str, Any]) -> ModelList:
        """``GET /models`` with ``filters`` (strategy, symbol, ..., limit, offset)."""
        return _parse(ModelList, await self._call("GET", "/models", params=filters))

    async def model(self, model_id: str) -> ModelDetail:
        return _parse(ModelDetail, await self._call("GET", _model_path(model_id)))

    async def delete_model(self, model_id: str, *, force: bool) -> ModelDeleted:
        params = {"force": "true"} if force else None
        response = await self._call("DELETE", _model_path(model_id), params=params)
        return _parse(ModelDeleted, response)

    async def open_model_download(
        self, model_id: str, archive_format: ArchiveFormat
    ) -> httpx.Response:
        """``GET /models/{id}/download`` opened for streaming, on the streams' pool."""
        path = f"{_model_path(model_id)}/download"
        return await self._open_stream(path, params={"format": archive_format})

    async def open_events(self, training_id: str, last_event_id: str | None) -> httpx.Response:
        """``GET /trainings/{id}/events`` opened for streaming; the caller reads and closes it.

        Opening it is one guarded call. Reading it is not: a stream that lasts an hour,
        or ends because the client went away, says nothing new about the host.
        """
        headers = {"Last-Event-ID": last_event_id} if last_event_id else None
        return await self._open_stream(_training_path(training_id, "events"), headers=headers)

    async def check_health(self) -> HostHealth:
        """GET /health through the breaker; the result is kept in ``last_health``.

        No free connection here says nothing about the host: the last result stays.
        """
        now = datetime.now(UTC)
        try:
            response = await self._call("GET", "/health")
            health = HostHealth(ok=True, checked_at=now, detail=response.text[:200])
        except (HostUnavailableError, HostRejectedError) as exc:
            health = HostHealth(ok=False, checked_at=now, detail=str(exc))
        except HostConnectionsBusyError as exc:
            return HostHealth(ok=False, checked_at=now, detail=f"not checked: {exc}")
        self.last_health = health
        return health

    async def _open_stream(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A GET opened for streaming on the streams' pool: one guarded call to open it."""
        streams = self._open_connections().streams
        with self.breaker.guard():
            response = await self._send(
                streams, "GET", path, params=params, headers=headers, stream=True
            )
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
        return self._accepted(response)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        guarded: bool = True,
    ) -> httpx.Response:
        """A 2xx answer from the host.

        Raises:
            HostDisabledError: the host is disabled here; nothing was sent.
            BreakerOpenError: the breaker is open; nothing was sent.
            HostConnectionsBusyError: no free connection here; nothing was sent.
            HostUnavailableError: unreachable, timeout or 5xx (``sent``: it may have arrived).
            HostRejectedError: a 4xx (a subclass names the cases the proxy acts on).
        """
        api = self._open_connections().api
        # Encoded before the breaker is involved: a body that cannot be sent is the
        # caller's mistake, never a host failure.
        content = encode_json_body(json) if json is not None else None
        with self.breaker.guard() if guarded else nullcontext():
            response = await self._send(api, method, path, content=content, params=params)
        return self._accepted(response)

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        if content is not None:
            headers = {**(headers or {}), "content-type": "application/json"}
        request = client.build_request(
            method, path, content=content, params=params, headers=headers
        )
        with self._timed():
            try:
                response = await client.send(request, stream=stream)
            except httpx.PoolTimeout as exc:
                self._metrics.host_calls.labels(outcome="busy").inc()
                raise HostConnectionsBusyError(
                    "every connection from this backend to the training host is in use; retry"
                ) from exc
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self._failed()
                raise HostUnavailableError(
                    f"training host unreachable at {client.base_url}: {exc!r}", sent=False
                ) from exc
            except httpx.TransportError as exc:
                # Read timeouts and broken connections: the request may have arrived.
                self._failed()
                raise HostUnavailableError(
                    f"training host did not answer: {exc!r}", sent=True
                ) from exc
        if response.status_code >= 500:
            self._failed()
            if stream:
                await response.aread()
                await response.aclose()
            raise HostUnavailableError(
                f"training host answered {response.status_code}: {response.text[:200]}", sent=True
            )
        return response

    def _accepted(self, response: httpx.Response) -> httpx.Response:
        """The response if 2xx; else the 4xx as the exception that names it."""
        self.unreachable_since = None  # it answered
        if response.status_code < 400:
            self._metrics.host_calls.labels(outcome="ok").inc()
            return response
        self._metrics.host_calls.labels(outcome="rejected").inc()
        error = _error_body(response.content)
        rejection = _rejection_class(response.status_code, error)
        raise rejection(
            response.status_code, response.content, response.headers.get("content-type"), error
        )

    def _open_connections(self) -> HostConnections:
        if self._connections is None:
            raise HostDisabledError()
        return self._connections

    @contextmanager
    def _timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._metrics.host_call_seconds.observe(time.perf_counter() - started)

    def _failed(self) -> None:
        self._metrics.host_calls.labels(outcome="failed").inc()
        if self.unreachable_since is None:
            self.unreachable_since = datetime.now(UTC)


def encode_json_body(body: Any) -> bytes:
    """The JSON bytes of a body for the host.

    Raises:
        InvalidRequestError: the body holds NaN, an infinity or text that is not UTF-8.
    """
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidRequestError(f"the request cannot be sent on as JSON: {exc}") from exc


def _training_path(training_id: str, action: str) -> str:
    # Ids reach here only after the contract's pattern (letters, digits, '.', '_', '-').
    return f"/trainings/{training_id}/{action}"


def _model_path(model_id: str) -> str:
    # Ids reach here only after the model id pattern (letters, digits, '.', '_', '-').
    return f"/models/{model_id}"


def _parse(model: type[Answer], response: httpx.Response) -> Answer:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise HostAnswerUnreadableError(
            f"the training host answered {response.request.url.path} with a body this "
            f"backend cannot read as {model.__name__} ({exc.error_count()} problems): "
            "are both services the same version?"
        ) from exc


def _error_body(content: bytes) -> ErrorBody | None:
    try:
        return ErrorBody.model_validate_json(content)
    except ValidationError:
        return None


def _rejection_class(status_code: int, error: ErrorBody | None) -> type[HostRejectedError]:
    if status_code == 404:
        return HostTrainingNotFoundError
    if status_code == 429:
        return HostAtCapacityError
    if (
        status_code == 409
        and error is not None
        and error.error == StartDeadlinePassedError.__name__
    ):
        return HostStartTooLateError
    return HostRejectedError
