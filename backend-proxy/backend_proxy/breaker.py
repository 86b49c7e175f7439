"""The one circuit breaker in front of the training host.

pybreaker has no asyncio support, so every guarded call runs as
``with breaker.guard(): await ...`` (``breaker.call`` on a coroutine would count
nothing). Only :class:`HostUnavailableError` (connection errors, timeouts, 5xx) is
a failure; a 4xx is the caller's problem, and a full connection pool here says
nothing about the host, so pybreaker counts both as successes. pybreaker lets
every caller through while half-open; :class:`HostBreaker` lets exactly one probe
through at a time and treats the others as if open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pybreaker

from backend_proxy.errors import BreakerOpenError, HostUnavailableError
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
