"""Fallback trainings in the backend container, on CPU, through the shared session runtime.

``training_sessions.service.SessionService`` runs each training in a
worker process with its own concurrency limit and FIFO queue, persists it and
resumes it after a restart; this module is the only one that calls it: it adapts
it to async callers and answers with the host service's own models
(``training_sessions.contract``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from functools import partial
from pathlib import Path

from anyio import to_thread
from training_engine.device import check_fallback_device
from training_sessions.contract import TrainingPerformance, TrainingStatus
from training_sessions.event_feed import EventFeed
from training_sessions.http.events import open_event_stream
from training_sessions.models import model_owners
from training_sessions.service import SessionService
from training_sessions.types import RuntimeSettings, SessionView, TrainingRequest

from backend_proxy.schemas import StartBody


def training_request(body: StartBody) -> TrainingRequest:
    """The runtime's request from a start body (either start route's)."""
    request = body.to_request()
    check_fallback_device(request.config.get("device", "auto"))
    # Local trainings have no GPU: a device the host would accept runs here on CPU.
    return dataclasses.replace(request, config={**request.config, "device": "cpu"})


class LocalTrainings:
    """Async face of the session runtime; every call runs in a worker thread."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self._manager = SessionService(settings)
        self._feed = EventFeed(self._manager)

    def _status(self, view: SessionView) -> TrainingStatus:
        return TrainingStatus.from_view(view, self.settings)

    async def start(self) -> None:
        await to_thread.run_sync(self._manager.start)

    async def shutdown(self) -> None:
        await self._feed.aclose()
        await to_thread.run_sync(self._manager.shutdown)

    async def set_tags(self, training_id: str, tags: list[str]) -> TrainingStatus:
        """Replace the training's tags (checked by the caller)."""
        view = await to_thread.run_sync(self._manager.set_tags, training_id, tags)
        return self._status(view)

    async def submit(self, training_id: str, body: StartBody) -> tuple[TrainingStatus, bool]:
        """The training's status and whether this call created it."""
        request = training_request(body)
        view, created = await to_thread.run_sync(self._manager.submit, request, training_id)
        return self._status(view), created

    async def get(self, training_id: str) -> TrainingStatus:
        return self._status(await to_thread.run_sync(self._manager.get, training_id))

    async def performance(self, training_id: str) -> TrainingPerformance:
        performance = await to_thread.run_sync(self._manager.performance, training_id)
        return TrainingPerformance.from_performance(performance)

    async def stop(self, training_id: str) -> TrainingStatus:
        view = await to_thread.run_sync(
            partial(self._manager.stop, training_id, refuse_finished=True)
        )
        return self._status(view).model_copy(update={"stop_requested": True})

    async def events(
        self, training_id: str, last_event_id: str | None
    ) -> AsyncGenerator[bytes, None]:
        stream = await open_event_stream(self._feed, training_id, last_event_id)
        # An async generator: closing it ends its polling of the store.
        assert isinstance(stream, AsyncGenerator)
        return stream

    async def log(self, training_id: str, tail: int | None) -> str:
        text: str = await to_thread.run_sync(self._manager.log, training_id, tail)
        return text

    async def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = await to_thread.run_sync(self._manager.status_counts)
        return counts

    async def resume(self, training_id: str) -> TrainingStatus:
        resumption = await to_thread.run_sync(self._manager.resume, training_id)
        return self._status(resumption.view)

    async def delete(self, training_id: str) -> list[str]:
        """Remove a finished training's rows and files (its model stays); the files removed.

        Raises SessionNotFoundError, SessionConflictError (queued or running).
        """
        return await to_thread.run_sync(self._delete, training_id)

    async def model_owners(self) -> dict[Path, str]:
        """The model folder (resolved) of each completed training here, and its training."""
        return await to_thread.run_sync(model_owners, self._manager)

    def _delete(self, training_id: str) -> list[str]:
        # The runtime removes the rows and the training's files, and names what it removed.
        return list(self._manager.delete(training_id))

    async def counts(self) -> dict[str, int]:
        counts: dict[str, int] = await to_thread.run_sync(self._manager.counts)
        return counts
