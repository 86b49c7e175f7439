"""Calls to the training host service, each guarded by one circuit breaker.

pybreaker has no asyncio support, so every call runs as
``with breaker.calling(): await http.request(...)`` (``breaker.call`` on a
coroutine would count nothing). Connection errors, timeouts and 5xx are
failures; a 4xx is the caller's problem and counts as a success (the host is
alive). pybreaker lets every caller through while half-open; ``HostBreaker``
lets exactly one probe through at a time and treats the others as if open.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pybreaker
from training_sessions.errors import InvalidRequestError
from training_sessions.http.events import KEEPALIVE_SECONDS

from backend_proxy.errors import BreakerOpenError, HostRejectedError, HostUnavailableError
from backend_proxy.metrics import ProxyMetrics

logger = logging.getLogger(__name__)


def _not_a_host_failure(exc: BaseException) -> bool:
    return not isinstance(exc, HostUnavailableError)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What ``GET /api/training-host/status`` shows of the breaker."""

    state: str
    failure_count: int
    failure_threshold: int
    recovery_timeout_seconds: float
    opened_at: datetime | None
    next_probe_at: datetime | None
    probe_in_flight: bool
    last_error: str | None
    last_error_at: datetime | None


class _BreakerListener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: HostBreaker) -> None:
        self._owner = owner

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self._owner._on_state_change(old_state.name if old_state else None, new_state.name)

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self._owner._on_failure(exc)


class HostBreaker:
    """A pybreaker circuit breaker that admits one probe at a time when half-open."""

    def __init__(
        self, failure_threshold: int, recovery_timeout_seconds: float, metrics: ProxyMetrics
    ) -> None:
        self._metrics = metrics
        self._probe_in_flight = False
        self._opened_at: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=failure_threshold,
            reset_timeout=recovery_timeout_seconds,
            # Only a host that cannot be reached or fails (5xx) is a failure: anything
            # else raised while calling (a cancelled request, a body that cannot be
            # encoded, a bug here) says nothing about the host's health.
            exclude=[_not_a_host_failure],
            listeners=[_BreakerListener(self)],
            name="training-host",
            # Keep the original error when the breaker trips: callers need to know
            # whether the request was sent.
            throw_new_error_on_trip=False,
        )

    @property
    def state(self) -> str:
        return self._breaker.current_state

    def is_open(self) -> bool:
        """True when a call now would not reach the host (open, or a probe already running)."""
        state = self.state
        if state == pybreaker.STATE_CLOSED:
            return False
        if self._probe_in_flight:
            return True
        return state == pybreaker.STATE_OPEN and not self._recovery_elapsed()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block as one breaker-guarded call, or raise ``BreakerOpenError``."""
        if self.is_open():
            self._metrics.host_calls.labels(outcome="short_circuited").inc()
            raise BreakerOpenError("the training host's circuit breaker is open")
        probing = self.state != pybreaker.STATE_CLOSED
        # Check and set with no await between: the event loop admits one probe.
        self._probe_in_flight = self._probe_in_flight or probing
        try:
            with self._breaker.calling():
                yield
        except pybreaker.CircuitBreakerError as exc:
            raise BreakerOpenError("the training host's circuit breaker is open") from exc
        finally:
            if probing:
                self._probe_in_flight = False

    def snapshot(self) -> BreakerSnapshot:
        opened_at = self._opened_at if self.state != pybreaker.STATE_CLOSED else None
        next_probe = None
        if opened_at is not None and self.state == pybreaker.STATE_OPEN:
            next_probe = opened_at + timedelta(seconds=self._breaker.reset_timeout)
        return BreakerSnapshot(
            state=self.state,
            failure_count=self._breaker.fail_counter,
            failure_threshold=self._breaker.fail_max,
            recovery_timeout_seconds=self._breaker.reset_timeout,
            opened_at=opened_at,
            next_probe_at=next_probe,
            probe_in_flight=self._probe_in_flight,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
        )

    def _recovery_elapsed(self) -> bool:
        # pybreaker compares against datetime.now(UTC) too, so a virtual clock moves both.
        if self._opened_at is None:
            return True
        return datetime.now(UTC) >= self._opened_at + timedelta(seconds=self._breaker.reset_timeout)

    def _on_state_change(self, old: str | None, new: str) -> None:
        if new == pybreaker.STATE_OPEN:
            self._opened_at = datetime.now(UTC)
        logger.warning("training host breaker: %s -> %s", old, new)
        self._metrics.set_breaker_state(new)
        self._metrics.breaker_transitions.labels(from_state=old or "none", to_state=new).inc()

    def _on_failure(self, exc: BaseException) -> None:
        self._last_error = str(exc) or type(exc).__name__
        self._last_error_at = datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HostHealth:
    """The last result of the background health check."""

    ok: bool
    checked_at: datetime
    detail: str | None


class HostClient:
    """The one way to call the host: breaker, timeouts and error translation."""

    def __init__(self, http: httpx.AsyncClient, breaker: HostBreaker, metrics: ProxyMetrics):
        self._http = http
        self.breaker = breaker
        self._metrics = metrics
        self.last_health: HostHealth | None = None

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def request(
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
            BreakerOpenError: the breaker is open; nothing was sent.
            HostUnavailableError: unreachable, timeout or 5xx (``sent``: it may have arrived).
            HostRejectedError: a 4xx, to pass through to the caller.
        """
        # Encoded before the breaker is involved: a body that cannot be sent is the
        # caller's mistake, never a host failure.
        content = encode_json_body(json) if json is not None else None
        if guarded:
            with self.breaker.guard():
                response = await self._send(method, path, content=content, params=params)
        else:
            # Asking about an ambiguous start must happen even while the breaker is open.
            response = await self._send(method, path, content=content, params=params)
        if response.status_code >= 400:
            self._metrics.host_calls.labels(outcome="rejected").inc()
            raise HostRejectedError(
                response.status_code, response.content, response.headers.get("content-type")
            )
        self._metrics.host_calls.labels(outcome="ok").inc()
        return response

    async def open_stream(
        self, path: str, *, headers: dict[str, str], read_timeout: float
    ) -> httpx.Response:
        """Open a streaming GET (Server-Sent Events); the caller reads and closes it.

        Opening it is one breaker-guarded call: an unreachable host or a 5xx counts as
        a failure. Reading the body is not: a stream that lasts an hour, or ends
        because the client went away, says nothing new about the host's health.

        Raises:
            BreakerOpenError, HostUnavailableError, HostRejectedError: as :meth:`request`.
        """
        with self.breaker.guard():
            response = await self._send(
                "GET",
                path,
                content=None,
                params=None,
                headers=headers,
                stream=True,
                timeout=httpx.Timeout(read_timeout, connect=self._http.timeout.connect),
            )
        if response.status_code >= 400:
            body = await response.aread()
            await response.aclose()
            self._metrics.host_calls.labels(outcome="rejected").inc()
            raise HostRejectedError(
                response.status_code, body, response.headers.get("content-type")
            )
        self._metrics.host_calls.labels(outcome="ok").inc()
        return response

    async def stream_events(
        self, training_id: str, last_event_id: str | None
    ) -> AsyncIterator[bytes]:
        """The host's event stream of a training, passed on chunk by chunk, unbuffered."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        upstream = await self.open_stream(
            f"/trainings/{training_id}/events",
            headers=headers,
            # The host sends a keep-alive line every KEEPALIVE_SECONDS while idle.
            read_timeout=KEEPALIVE_SECONDS * 4,
        )
        return _relay(upstream)

    async def check_health(self) -> HostHealth:
        """GET /health through the breaker; the result is kept in ``last_health``."""
        try:
            response = await self.request("GET", "/health")
            health = HostHealth(ok=True, checked_at=datetime.now(UTC), detail=response.text[:200])
        except (HostUnavailableError, HostRejectedError) as exc:
            health = HostHealth(ok=False, checked_at=datetime.now(UTC), detail=str(exc))
        self.last_health = health
        return health

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        started = time.perf_counter()
        if content is not None:
            headers = {**(headers or {}), "content-type": "application/json"}
        try:
            request = self._http.build_request(
                method,
                path,
                content=content,
                params=params,
                headers=headers,
                timeout=timeout if timeout is not None else self._http.timeout,
            )
            response = await self._http.send(request, stream=stream)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self._failed()
            raise HostUnavailableError(
                f"training host unreachable at {self.base_url}: {exc!r}", sent=False
            ) from exc
        except httpx.TransportError as exc:
            # Read timeouts and broken connections: the request may have arrived.
            self._failed()
            raise HostUnavailableError(f"training host did not answer: {exc!r}", sent=True) from exc
        finally:
            self._metrics.host_call_seconds.observe(time.perf_counter() - started)
        if response.status_code >= 500:
            self._failed()
            if stream:
                await response.aread()
                await response.aclose()
            raise HostUnavailableError(
                f"training host answered {response.status_code}: {response.text[:200]}", sent=True
            )
        return response

    def _failed(self) -> None:
        self._metrics.host_calls.labels(outcome="failed").inc()


def encode_json_body(body: Any) -> bytes:
    """The JSON bytes of a body for the host.

    Raises:
        InvalidRequestError: the body holds NaN, an infinity or text that is not UTF-8.
    """
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidRequestError(f"the request cannot be sent on as JSON: {exc}") from exc


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The host's stream as it arrives; closed when either side goes away."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.TransportError as exc:
        # The host went away mid-stream: the client reconnects with its Last-Event-ID.
        logger.info("event stream from the host ended: %r", exc)
    finally:
        await upstream.aclose()


def build_http_client(
    base_url: str,
    *,
    read_timeout: float,
    connect_timeout: float,
    token: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The app's one AsyncClient to the host (created in the lifespan)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        headers=headers,
        transport=transport,
        # The host service is this machine (or its Docker host): never through an HTTP
        # proxy from the environment, and no per-request environment lookups.
        trust_env=False,
    )
