"""Fallback trainings in the backend container, on CPU, through the shared session runtime.

``training_sessions.manager.SessionManager`` runs each training in a
worker process with its own concurrency limit and FIFO queue, persists it and
resumes it after a restart; this module only adapts it to async callers and to
the host service's JSON bodies (``training_sessions.contract``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from training_engine.device import check_fallback_device
from training_sessions.contract import StartTrainingBody, TrainingPerformance, TrainingStatus
from training_sessions.event_feed import EventFeed
from training_sessions.http.events import open_event_stream
from training_sessions.manager import SessionManager
from training_sessions.types import RuntimeSettings, SessionView, TrainingRequest


def view_body(view: SessionView) -> dict[str, Any]:
    """A session as the host service writes its status (the shared contract's JSON)."""
    return TrainingStatus.from_view(view).model_dump(mode="json")


def training_request(body: dict[str, Any]) -> TrainingRequest:
    """The runtime's request from a start body (either start route's)."""
    request = StartTrainingBody.model_validate(body).to_request()
    check_fallback_device(request.config.get("device", "auto"))
    # Local trainings have no GPU: a device the host would accept runs here on CPU.
    return dataclasses.replace(request, config={**request.config, "device": "cpu"})


class LocalTrainings:
    """Async face of the session runtime; every call runs in a worker thread."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self._manager = SessionManager(settings)
        self._feed = EventFeed(self._manager)

    async def start(self) -> None:
        await to_thread.run_sync(self._manager.start)

    async def shutdown(self) -> None:
        await self._feed.aclose()
        await to_thread.run_sync(self._manager.shutdown)

    async def submit(self, training_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        request = training_request(body)
        view, created = await to_thread.run_sync(self._manager.submit, request, training_id)
        return view_body(view), created

    async def get(self, training_id: str) -> dict[str, Any]:
        return view_body(await to_thread.run_sync(self._manager.get, training_id))

    async def performance(self, training_id: str) -> dict[str, Any]:
        performance = await to_thread.run_sync(self._manager.performance, training_id)
        return TrainingPerformance.from_performance(performance).model_dump(mode="json")

    async def stop(self, training_id: str) -> dict[str, Any]:
        body = view_body(await to_thread.run_sync(self._manager.stop, training_id))
        return {**body, "stop_requested": True}

    async def events(self, training_id: str, last_event_id: str | None) -> AsyncIterator[bytes]:
        return await open_event_stream(self._feed, training_id, last_event_id)

    async def log(self, training_id: str, tail: int | None) -> str:
        text: str = await to_thread.run_sync(self._manager.log, training_id, tail)
        return text

    async def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = await to_thread.run_sync(self._manager.status_counts)
        return counts

    async def resume(self, training_id: str) -> dict[str, Any]:
        return view_body(await to_thread.run_sync(self._manager.resume, training_id))

    async def counts(self) -> dict[str, int]:
        counts: dict[str, int] = await to_thread.run_sync(self._manager.counts)
        return counts
