"""Starts on the host that are never lost and never run twice.

The dispatcher has claimed the id in the routing table; the route learns the
start's deadline before the host is called, so a backend that dies mid-start still
knows where to look, and the host creates nothing from a start it reads after that
deadline (409 ``StartDeadlinePassedError``). Then:

- certainly not sent (breaker open, connection refused), or read too late: the
  training runs locally (:class:`RunLocally`);
- ambiguous (read timeout, 5xx after sending): once the deadline has passed (plus a
  margin for clock differences) the host is asked; 200: it runs there; 404: it never
  will, so it runs locally; no answer: the route stays unconfirmed, with its request,
  and :meth:`HostStarts.settle` asks again later (health poller, status requests);
- the host answers a new id as already known, and created before the id was claimed
  here: it had it before this backend, which does not adopt it (409
  ``TrainingNotOwnedError``). Known but created after the claim, it is this backend's
  own (a concurrent repeat of the same id reached the host first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from training_sessions.contract import (
    StartMultiSymbolBody,
    StartTrainingBody,
    StartTrainingResponse,
    TrainingStatus,
)
from training_sessions.errors import InvalidRequestError

from backend_proxy.errors import (
    BreakerOpenError,
    HostAnswerUnreadableError,
    HostAtCapacityError,
    HostConnectionsBusyError,
    HostRejectedError,
    HostStartTooLateError,
    HostTrainingNotFoundError,
    HostUnavailableError,
    StartUnconfirmedError,
    TrainingNotOwnedError,
)
from backend_proxy.host_client import HostClient
from backend_proxy.metrics import ProxyMetrics
from backend_proxy.route_store import RouteStore
from backend_proxy.routing_table import Route
from backend_proxy.schemas import StartBody
from backend_proxy.training_backend import RunLocally

logger = logging.getLogger(__name__)

# Host and backend read clocks that differ by less than this (the same machine, or
# NTP-synchronised): an ambiguous start is asked about only this long after its deadline,
# and a host training created this long before its id was claimed here is not ours.
CLOCK_MARGIN = timedelta(seconds=1.0)


class UnconfirmedStart(BaseModel):
    """A route's last state while the host has not confirmed its start: enough to settle it."""

    training_id: str
    status: Literal["unknown"] = "unknown"
    start_deadline: datetime | None = None
    request: dict[str, Any] | None = None
    multi_symbol: bool = False

    @classmethod
    def of(cls, training_id: str, body: StartBody, deadline: datetime) -> dict[str, Any]:
        """The routing table's JSON of a start sent (or about to be) with ``deadline``."""
        return cls(
            training_id=training_id,
            start_deadline=deadline,
            request=body.model_dump(mode="json", exclude_none=True),
            multi_symbol=isinstance(body, StartMultiSymbolBody),
        ).model_dump(mode="json")

    def body(self) -> StartBody | None:
        """The start's body as kept; None when none was (a row from before it was kept)."""
        if self.request is None:
            return None
        model = StartMultiSymbolBody if self.multi_symbol else StartTrainingBody
        return model.model_validate(self.request)


class HostStarts:
    """Sends starts to the host and settles the ones whose fate was left unknown."""

    def __init__(
        self,
        client: HostClient,
        routes: RouteStore,
        metrics: ProxyMetrics,
        *,
        start_timeout_seconds: float,
        fallback_on_host_at_capacity: bool,
    ) -> None:
        self._client = client
        self._routes = routes
        self._metrics = metrics
        # A start's deadline: the host creates nothing from it after this much time.
        self._start_timeout = timedelta(seconds=start_timeout_seconds)
        self._fallback_on_capacity = fallback_on_host_at_capacity
        # Starts being decided by a request right now: settling leaves them alone.
        self._starting: set[str] = set()

    @contextmanager
    def deciding(self, training_id: str) -> Iterator[None]:
        """While a request decides where a start runs (here or, after :class:`RunLocally`,
        locally), settling leaves it alone: one answer, the request's, says ``created``."""
        self._starting.add(training_id)
        try:
            yield
        finally:
            self._starting.discard(training_id)

    async def start(self, claimed: Route, body: StartBody) -> StartTrainingResponse:
        """The host's answer to the start of a training whose id was just ``claimed``.

        Call it inside :meth:`deciding`, which must also cover a local take-over.

        Raises:
            RunLocally: the host certainly did not create it, and never will.
            StartUnconfirmedError: sent, and the host cannot be asked whether it has it.
            TrainingNotOwnedError: the host had this id before this backend claimed it.
        """
        answer = await self._start(claimed, body)
        self._metrics.trainings_routed.labels(routed_to="host_service", fallback_reason="").inc()
        return answer

    async def _start(self, claimed: Route, body: StartBody) -> StartTrainingResponse:
        training_id = claimed.training_id
        deadline = datetime.now(UTC) + self._start_timeout
        await self._routes.update(
            training_id, last_state=UnconfirmedStart.of(training_id, body, deadline)
        )
        try:
            answer = await self._client.start(body, deadline)
        except BreakerOpenError as exc:
            raise RunLocally(training_id, body, "breaker_open") from exc
        except HostUnavailableError as exc:
            if not exc.sent:
                raise RunLocally(training_id, body, "host_unreachable") from exc
            # Ambiguous: only a 404 read after the deadline proves the host never creates it.
            await _sleep_until(deadline + CLOCK_MARGIN)
            state = await self._ask_about(training_id)
            if state is None:
                raise RunLocally(training_id, body, "host_error") from exc
            await self.confirm(training_id, state)
            return StartTrainingResponse(**dict(state), created=True)
        except HostAtCapacityError as exc:
            if self._fallback_on_capacity:
                raise RunLocally(training_id, body, "host_at_capacity") from exc
            await self._routes.delete(training_id)
            raise
        except HostStartTooLateError as exc:
            # The host read it too late and created nothing; it never will from it.
            raise RunLocally(training_id, body, "host_error") from exc
        except (HostRejectedError, HostConnectionsBusyError, InvalidRequestError):
            # Refused, or never sent: the host has nothing, so no route may stay behind.
            await self._routes.delete(training_id)
            raise
        if not answer.created and _utc(answer.created_at) < claimed.created_at - CLOCK_MARGIN:
            # The host had this id before this backend claimed it: not ours to adopt.
            await self._routes.delete(training_id)
            raise TrainingNotOwnedError(training_id)
        await self.confirm(training_id, answer)
        return answer

    async def send_again(self, route: Route, body: StartBody) -> StartTrainingResponse:
        """A start of a training routed to the host already: the host's answer, confirmed.

        Raises:
            HostUnavailableError: the host cannot be reached (nothing is learnt).
        """
        deadline = datetime.now(UTC) + self._start_timeout
        if not route.confirmed:
            # Settling must not read a 404 as final before this retry's deadline.
            state = UnconfirmedStart.of(route.training_id, body, deadline)
            await self._routes.update(route.training_id, last_state=state)
        answer = await self._client.start(body, deadline)
        await self.confirm(route.training_id, answer)
        return answer

    async def settle(self, route: Route) -> TrainingStatus | None:
        """Settle an ambiguous start past its deadline: the host's state of it if it has it.

        Returns None while that cannot be known yet (before the deadline, while a request
        is deciding it, or while the host cannot be asked).

        Raises:
            RunLocally: the host answered 404 after the deadline, so it never creates it.
        """
        try:
            pending = UnconfirmedStart.model_validate(route.last_state)
        except ValidationError:
            pending = UnconfirmedStart(training_id=route.training_id)
        deadline = pending.start_deadline or route.created_at + self._start_timeout
        too_early = datetime.now(UTC) < deadline + CLOCK_MARGIN
        if too_early or route.training_id in self._starting:
            return None
        try:
            state = await self._ask_about(route.training_id)
        except StartUnconfirmedError:
            return None  # the host cannot be asked: the next round retries
        if state is not None:
            await self.confirm(route.training_id, state)
            return state
        body = pending.body()
        if body is None:
            logger.warning("unconfirmed start %s has no request kept", route.training_id)
            return None
        raise RunLocally(route.training_id, body, "host_error")

    async def confirm(self, training_id: str, state: TrainingStatus) -> None:
        """The host answered with the training: it certainly has it; keep what it said."""
        await self._routes.update(training_id, confirmed=True, last_state=stored(state))

    async def _ask_about(self, training_id: str) -> TrainingStatus | None:
        """After an ambiguous start: the host's state of the id, None if it certainly lacks it.

        Asked even while the breaker is open: only the host can settle it.
        """
        try:
            return await self._client.status(training_id, guarded=False)
        except HostTrainingNotFoundError:
            return None
        except (
            HostRejectedError,
            HostUnavailableError,
            HostConnectionsBusyError,
            HostAnswerUnreadableError,
        ) as exc:
            raise StartUnconfirmedError(training_id) from exc


def stored(state: TrainingStatus) -> dict[str, Any]:
    """The routing table's JSON of a state the host answered (a start's ``created`` left out)."""
    return state.model_dump(mode="json", exclude={"created"})


def _utc(instant: datetime) -> datetime:
    # The contract writes UTC; a time without an offset is a UTC time.
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


async def _sleep_until(instant: datetime) -> None:
    seconds = (instant - datetime.now(UTC)).total_seconds()
    if seconds > 0:
        await asyncio.sleep(seconds)
