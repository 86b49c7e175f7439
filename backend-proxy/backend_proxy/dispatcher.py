"""The routing decision for each training request; knows nothing of HTTP.

Start: the proxy assigns the training_id, records the route, then calls the
host. A start that certainly did not reach the host (breaker open, connection
refused, disabled) runs locally. A start whose fate is unknown (read timeout,
5xx after sending) is checked with the host first: it runs locally only if the
host answers 404 for that id. Status, performance and stop follow the routing
table; a host that is down answers from the last state seen, and stops wait
for it in the table until the health poller delivers them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from anyio import to_thread
from training_sessions.errors import SessionConflictError

from backend_proxy.errors import (
    BreakerOpenError,
    HostRejectedError,
    HostUnavailableError,
    StartUnconfirmedError,
    TrainingNotFoundError,
)
from backend_proxy.host_client import HostClient
from backend_proxy.local_trainings import LocalTrainings
from backend_proxy.metrics import ProxyMetrics
from backend_proxy.routing_table import Route, RoutingTable
from backend_proxy.schemas import FallbackReason

logger = logging.getLogger(__name__)

HOST = "host_service"
# Asked about an ambiguous start only this long after its deadline: host and backend
# read clocks that may differ a little (the same machine, or NTP-synchronised).
DEADLINE_MARGIN_SECONDS = 1.0


class TrainingDispatcher:
    """Sends each training to the host service or to the local CPU runtime."""

    def __init__(
        self,
        host: HostClient | None,
        routes: RoutingTable,
        local: LocalTrainings,
        metrics: ProxyMetrics,
        *,
        fallback_on_host_at_capacity: bool = False,
        start_timeout_seconds: float = 30.0,
    ) -> None:
        self.host = host
        # A start's deadline: the host creates nothing from it after this much time.
        self._start_timeout = timedelta(seconds=start_timeout_seconds)
        # Starts being decided by a request right now: the poller leaves them alone.
        self._starting: set[str] = set()
        self.routes = routes
        self.local = local
        self._metrics = metrics
        self._fallback_on_capacity = fallback_on_host_at_capacity

    async def start(
        self, body: dict[str, Any], *, multi_symbol: bool
    ) -> tuple[dict[str, Any], int]:
        """Start a training; returns the response body and status (202 new, 200 repeat)."""
        training_id = body.get("training_id") or uuid4().hex
        self._starting.add(training_id)
        try:
            return await self._start(training_id, body, multi_symbol)
        finally:
            self._starting.discard(training_id)

    async def _start(
        self, training_id: str, body: dict[str, Any], multi_symbol: bool
    ) -> tuple[dict[str, Any], int]:
        # The deadline is the proxy's to set, never the client's.
        body = {k: v for k, v in body.items() if k != "start_deadline"}
        body = {**body, "training_id": training_id}
        existing = await self._route(training_id) or await self._claim(training_id)
        if existing is not None:
            return await self._repeat_start(existing, body, multi_symbol)
        if self.host is None:
            return await self._start_local(training_id, body, "disabled")

        deadline = datetime.now(UTC) + self._start_timeout
        # The claimed route learns the deadline: the poller settles an ambiguous start by it.
        await self._write(
            self.routes.update,
            training_id,
            last_state=_unconfirmed_state(training_id, deadline, body, multi_symbol),
        )
        try:
            response = await self.host.request(
                "POST", _start_path(multi_symbol), json=_with_deadline(body, deadline)
            )
        except BreakerOpenError:
            return await self._start_local(training_id, body, "breaker_open")
        except HostUnavailableError as exc:
            if not exc.sent:
                return await self._start_local(training_id, body, "host_unreachable")
            # Ambiguous: only a 404 read after the deadline proves the host never creates it.
            await _sleep_until(deadline + timedelta(seconds=DEADLINE_MARGIN_SECONDS))
            state = await self._ask_host_about(training_id)
            if state is None:
                return await self._start_local(training_id, body, "host_error")
            await self._confirm(training_id, state)
            self._metrics.trainings_routed.labels(routed_to=HOST, fallback_reason="").inc()
            return {**state, "created": True, **_host_fields(True)}, 202
        except HostRejectedError as exc:
            if exc.status_code == 429 and self._fallback_on_capacity:
                return await self._start_local(training_id, body, "host_at_capacity")
            if _deadline_passed(exc):
                # The host read it too late and created nothing; it never will from it.
                return await self._start_local(training_id, body, "host_error")
            await self._write(self.routes.delete, training_id)
            raise
        except Exception:
            # Not sent, or refused before sending (a body that cannot be encoded): no ghost.
            await self._write(self.routes.delete, training_id)
            raise
        state = response.json()
        await self._confirm(training_id, state)
        self._metrics.trainings_routed.labels(routed_to=HOST, fallback_reason="").inc()
        return {**state, **_host_fields(True)}, response.status_code

    async def status(self, training_id: str) -> dict[str, Any]:
        """The training's state from wherever it runs; the last one seen if the host is down."""
        route = await self._require(training_id)
        if route.routed_to == "local":
            return {**await self.local.get(training_id), **_local_fields(route)}
        try:
            state = await self._host_request("GET", f"/trainings/{training_id}/status")
        except HostUnavailableError as exc:
            if not route.confirmed:
                # No state was ever seen: the start itself is still unconfirmed.
                raise StartUnconfirmedError(training_id) from exc
            return {**route.last_state, **_host_fields(False, route.stop_pending)}
        except HostRejectedError as exc:
            if route.confirmed or exc.status_code != 404:
                raise
            # The host lacks an ambiguous start: final only once its deadline has passed.
            if await self._settle(route):
                return await self.status(training_id)
            raise StartUnconfirmedError(training_id) from exc
        self._remember(training_id, state)
        return {**state, **_host_fields(True, route.stop_pending)}

    async def performance(self, training_id: str) -> dict[str, Any]:
        route = await self._require(training_id)
        if route.routed_to == "local":
            return {**await self.local.performance(training_id), **_local_fields(route)}
        state = await self._host_request("GET", f"/trainings/{training_id}/performance")
        return {**state, **_host_fields(True, route.stop_pending)}

    async def stop(self, training_id: str) -> tuple[dict[str, Any], int]:
        """Stop a training; a host training is kept as a pending stop while the host is down."""
        route = await self._require(training_id)
        if route.routed_to == "local":
            return {**await self.local.stop(training_id), **_local_fields(route)}, 200
        try:
            state = await self._host_request("POST", f"/trainings/{training_id}/stop")
        except HostUnavailableError as exc:
            if not route.confirmed:
                raise StartUnconfirmedError(training_id) from exc
            await self._write(self.routes.update, training_id, stop_pending=True)
            return {**route.last_state, "stop_requested": True, **_host_fields(False, True)}, 202
        await self._write(self.routes.update, training_id, last_state=state, stop_pending=False)
        return {**state, **_host_fields(True)}, 200

    async def resume(self, training_id: str) -> dict[str, Any]:
        """Resume a failed, cancelled or interrupted training where it runs (host or local)."""
        route = await self._require(training_id)
        if route.routed_to == "local":
            return {**await self.local.resume(training_id), **_local_fields(route)}
        state = await self._host_request("POST", f"/trainings/{training_id}/resume")
        await self._write(self.routes.update, training_id, last_state=state, confirmed=True)
        return {**state, **_host_fields(True, route.stop_pending)}

    async def events(self, training_id: str, last_event_id: str | None) -> AsyncIterator[bytes]:
        """The training's Server-Sent Events: relayed from the host, or the local log's."""
        route = await self._require(training_id)
        if route.routed_to == "local":
            return await self.local.events(training_id, last_event_id)
        if self.host is None:
            raise HostUnavailableError("the training host service is disabled")
        return await self.host.stream_events(training_id, last_event_id)

    async def log(self, training_id: str, tail: int | None) -> str:
        """The training's log from wherever it runs; 503 for a host one while the host is down."""
        route = await self._require(training_id)
        if route.routed_to == "local":
            return await self.local.log(training_id, tail)
        if self.host is None:
            raise HostUnavailableError("the training host service is disabled")
        params = {"tail": tail} if tail is not None else None
        response = await self.host.request("GET", f"/trainings/{training_id}/logs", params=params)
        return response.text

    async def list_trainings(
        self, *, status: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        """Trainings this backend routed, newest first, fresh where their runtime answers."""
        routes, total = await to_thread.run_sync(
            lambda: self.routes.list_routes(status=status, limit=limit, offset=offset)
        )
        items = await asyncio.gather(*(self._fresh_item(route) for route in routes))
        known = [item for item in items if item is not None]
        return {"items": known, "total": total, "limit": limit, "offset": offset}

    async def deliver_pending_stops(self) -> int:
        """Send the stops kept while the host was down; returns how many were delivered."""
        if self.host is None:
            return 0
        delivered = 0
        for route in await to_thread.run_sync(self.routes.pending_stops):
            try:
                state = await self.host.request("POST", f"/trainings/{route.training_id}/stop")
            except HostUnavailableError:
                break  # down again: the next health check retries
            except HostRejectedError as exc:
                logger.warning("pending stop of %s refused: %s", route.training_id, exc)
                await self._write(self.routes.update, route.training_id, stop_pending=False)
                continue
            await self._write(
                self.routes.update, route.training_id, last_state=state.json(), stop_pending=False
            )
            self._metrics.pending_stops_delivered.inc()
            delivered += 1
        return delivered

    async def resolve_unconfirmed_starts(self) -> int:
        """Settle ambiguous host starts whose deadline has passed; returns how many.

        The host has it (200): confirmed. The host answers 404 after the deadline: it can
        no longer create it, so it runs locally. Unreachable again: the next round retries.
        """
        if self.host is None:
            return 0
        resolved = 0
        for route in await to_thread.run_sync(self.routes.unconfirmed_host_routes):
            if await self._settle(route):
                resolved += 1
        return resolved

    async def _settle(self, route: Route) -> bool:
        """Settle one ambiguous host start past its deadline; False: not yet (or no host)."""
        deadline = _deadline_of(route.last_state, route.created_at + self._start_timeout)
        too_early = datetime.now(UTC) < deadline + timedelta(seconds=DEADLINE_MARGIN_SECONDS)
        if too_early or route.training_id in self._starting:
            return False
        try:
            state = await self._ask_host_about(route.training_id)
        except StartUnconfirmedError:
            return False  # the host cannot be asked: the next round retries
        if state is not None:
            await self._confirm(route.training_id, state)
            return True
        request = route.last_state.get("request")
        if not isinstance(request, dict):
            logger.warning("unconfirmed start %s has no request kept", route.training_id)
            return False
        logger.info("host never created %s: it runs locally", route.training_id)
        await self._start_local(route.training_id, request, "host_error")
        return True

    async def _repeat_start(
        self, route: Route, body: dict[str, Any], multi_symbol: bool
    ) -> tuple[dict[str, Any], int]:
        """The same training_id again: go where it went the first time, never elsewhere."""
        if route.routed_to == "local":
            state, created = await self.local.submit(route.training_id, body)
            return {**state, "created": created, **_local_fields(route)}, 202 if created else 200
        deadline = datetime.now(UTC) + self._start_timeout
        if not route.confirmed:
            # The poller must not read a 404 as final before this retry's deadline.
            state = _unconfirmed_state(route.training_id, deadline, body, multi_symbol)
            await self._write(self.routes.update, route.training_id, last_state=state)
        try:
            response = await self._host_response(
                "POST", _start_path(multi_symbol), json=_with_deadline(body, deadline)
            )
        except HostUnavailableError as exc:
            if not route.confirmed:
                raise StartUnconfirmedError(route.training_id) from exc
            return {
                **route.last_state,
                "created": False,
                **_host_fields(False, route.stop_pending),
            }, 200
        state = response.json()
        await self._confirm(route.training_id, state)
        return {**state, **_host_fields(True, route.stop_pending)}, response.status_code

    async def _claim(self, training_id: str) -> Route | None:
        """Take the id for this start; the route of the start that has it when another does.

        Of two concurrent starts of one id exactly one claims it; the other becomes a
        repeat of it (one training, two 2xx answers).
        """
        claimed = await self._write(
            self.routes.claim,
            training_id,
            HOST if self.host is not None else "local",
            fallback_reason=None if self.host is not None else "disabled",
            last_state={"training_id": training_id, "status": "unknown"},
        )
        if claimed is not None:
            return None
        route: Route | None = await self._write(self.routes.get, training_id)
        if route is None:  # claimed and given up again in between
            raise SessionConflictError(
                f"another start of '{training_id}' was just refused; retry the start"
            )
        return route

    async def _start_local(
        self, training_id: str, body: dict[str, Any], reason: FallbackReason
    ) -> tuple[dict[str, Any], int]:
        logger.info("training %s runs locally: %s", training_id, reason)
        try:
            state, created = await self.local.submit(training_id, body)
        except Exception:
            await self._write(self.routes.delete, training_id)
            raise
        route = await self._write(
            self.routes.add,
            training_id,
            "local",
            fallback_reason=reason,
            confirmed=True,
            last_state=state,
        )
        self._metrics.trainings_routed.labels(routed_to="local", fallback_reason=reason).inc()
        return {**state, "created": created, **_local_fields(route)}, 202 if created else 200

    async def _ask_host_about(self, training_id: str) -> dict[str, Any] | None:
        """After an ambiguous start: the host's state of the id, None if it certainly lacks it."""
        assert self.host is not None
        try:
            response = await self.host.request(
                "GET", f"/trainings/{training_id}/status", guarded=False
            )
        except HostRejectedError as exc:
            if exc.status_code == 404:
                return None
            raise StartUnconfirmedError(training_id) from exc
        except HostUnavailableError as exc:
            raise StartUnconfirmedError(training_id) from exc
        state: dict[str, Any] = response.json()
        return state

    async def _fresh_item(self, route: Route) -> dict[str, Any] | None:
        """The route's fresh state; the last one seen if that fails, None if none was seen."""
        try:
            return await self.status(route.training_id)
        except Exception as exc:  # one broken item must not fail the whole list
            logger.warning("list: %s answered from the table: %s", route.training_id, exc)
            if not route.confirmed:
                return None
            if route.routed_to == "local":
                return {**route.last_state, **_local_fields(route)}
            return {**route.last_state, **_host_fields(False, route.stop_pending)}

    async def _host_request(self, method: str, path: str) -> dict[str, Any]:
        state: dict[str, Any] = (await self._host_response(method, path)).json()
        return state

    async def _host_response(self, method: str, path: str, json: Any = None) -> Any:
        if self.host is None:
            raise HostUnavailableError("the training host service is disabled")
        return await self.host.request(method, path, json=json)

    async def _confirm(self, training_id: str, state: dict[str, Any]) -> None:
        await self._write(self.routes.update, training_id, confirmed=True, last_state=state)

    def _remember(self, training_id: str, state: dict[str, Any]) -> None:
        cached = self.routes.cached(training_id)
        if cached is not None and cached.confirmed and cached.last_state == state:
            return
        # Keeping the last state must not slow the answer: write after responding.
        # The host answered with the training: it certainly has it.
        task = asyncio.get_running_loop().create_task(
            self._write(self.routes.update, training_id, last_state=state, confirmed=True)
        )
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _require(self, training_id: str) -> Route:
        route = await self._route(training_id)
        if route is None:
            raise TrainingNotFoundError(training_id)
        return route

    async def _route(self, training_id: str) -> Route | None:
        cached = self.routes.cached(training_id)
        if cached is not None:
            return cached
        return await to_thread.run_sync(self.routes.get, training_id)

    async def _write(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return await to_thread.run_sync(lambda: method(*args, **kwargs))


_background: set[asyncio.Task[Any]] = set()


def _unconfirmed_state(
    training_id: str, deadline: datetime, body: dict[str, Any], multi_symbol: bool
) -> dict[str, Any]:
    """The last state of a start the host has not confirmed: what to settle it with later."""
    return {
        "training_id": training_id,
        "status": "unknown",
        "start_deadline": deadline.isoformat(),
        "request": body,
        "multi_symbol": multi_symbol,
    }


def _with_deadline(body: dict[str, Any], deadline: datetime) -> dict[str, Any]:
    return {**body, "start_deadline": deadline.isoformat().replace("+00:00", "Z")}


def _deadline_passed(exc: HostRejectedError) -> bool:
    """The host refused a start it read after its start_deadline."""
    if exc.status_code != 409:
        return False
    try:
        error = json.loads(exc.body).get("error")
    except (ValueError, AttributeError):
        return False
    return bool(error == "StartDeadlinePassedError")


def _deadline_of(state: dict[str, Any], default: datetime) -> datetime:
    value = state.get("start_deadline")
    return datetime.fromisoformat(value) if isinstance(value, str) else default


async def _sleep_until(instant: datetime) -> None:
    seconds = (instant - datetime.now(UTC)).total_seconds()
    if seconds > 0:
        await asyncio.sleep(seconds)


def _start_path(multi_symbol: bool) -> str:
    return "/trainings/start-multi-symbol" if multi_symbol else "/trainings/start"


def _host_fields(reachable: bool, stop_pending: bool = False) -> dict[str, Any]:
    """The routing fields of a host training (``schemas.RoutingFields``)."""
    return {
        "routed_to": HOST,
        "fallback_reason": None,
        "host_reachable": reachable,
        "stop_pending": stop_pending,
    }


def _local_fields(route: Route) -> dict[str, Any]:
    """A local training's: it never waits for the host, whose reachability is moot."""
    return {
        "routed_to": "local",
        "fallback_reason": route.fallback_reason,
        "host_reachable": None,
        "stop_pending": False,
    }
