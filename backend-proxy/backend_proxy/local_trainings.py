"""Fallback trainings in the backend container, on CPU, through the shared session runtime.

``training_sessions.manager.SessionManager`` runs each training in a
worker process with its own concurrency limit and FIFO queue, persists it and
resumes it after a restart; this module only adapts it to async callers and to
the host service's JSON shapes.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from anyio import to_thread
from training_sessions.manager import SessionManager
from training_sessions.types import (
    RuntimeSettings,
    SessionPerformance,
    SessionView,
    TrainingRequest,
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def view_body(view: SessionView) -> dict[str, Any]:
    """A session in the host service's status shape (the request summarised, not whole)."""
    body: dict[str, Any] = _jsonable(dataclasses.asdict(view))
    body.pop("request", None)
    return {**body, **view.request_summary()}


def performance_body(performance: SessionPerformance) -> dict[str, Any]:
    """A session's history in the host service's performance shape."""
    body: dict[str, Any] = _jsonable(dataclasses.asdict(performance))
    return body


def training_request(body: dict[str, Any]) -> TrainingRequest:
    """The runtime's request from a start body (``symbol``/``timeframe`` or the lists)."""
    symbols = body.get("symbols") or ([body["symbol"]] if body.get("symbol") else None)
    timeframes = body.get("timeframes") or ([body["timeframe"]] if body.get("timeframe") else None)
    # Local trainings have no GPU: whatever device the client asked for, they run on CPU.
    config = {**(body.get("config") or {}), "device": "cpu"}
    return TrainingRequest.from_dict(
        {
            "strategy": body.get("strategy"),
            "symbols": symbols,
            "timeframes": timeframes,
            "start_date": body.get("start_date"),
            "end_date": body.get("end_date"),
            "config": config,
        }
    )


class LocalTrainings:
    """Async face of the session runtime; every call runs in a worker thread."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self._manager = SessionManager(settings)

    async def start(self) -> None:
        await to_thread.run_sync(self._manager.start)

    async def shutdown(self) -> None:
        await to_thread.run_sync(self._manager.shutdown)

    async def submit(self, training_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        request = training_request(body)
        view, created = await to_thread.run_sync(self._manager.submit, request, training_id)
        return view_body(view), created

    async def get(self, training_id: str) -> dict[str, Any]:
        return view_body(await to_thread.run_sync(self._manager.get, training_id))

    async def performance(self, training_id: str) -> dict[str, Any]:
        return performance_body(await to_thread.run_sync(self._manager.performance, training_id))

    async def stop(self, training_id: str) -> dict[str, Any]:
        return view_body(await to_thread.run_sync(self._manager.stop, training_id))

    async def counts(self) -> dict[str, int]:
        counts: dict[str, int] = await to_thread.run_sync(self._manager.counts)
        return counts
