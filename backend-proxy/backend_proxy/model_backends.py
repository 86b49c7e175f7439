"""Where a model lives: the host service's models folder, or this backend's (fallback runs).

Both answer with the same bodies (``training_sessions.models``' contract models) plus ``routed_to``;
``model_dispatcher.ModelDispatcher`` picks one per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from anyio import to_thread
from starlette.concurrency import iterate_in_threadpool
from training_sessions.errors import ModelNotFoundError
from training_sessions.models import (
    ArchiveFormat,
    ModelDeleted,
    ModelFilter,
    ModelFolder,
    archive_chunks,
    delete_model,
    detail_of,
    find_model,
    scan_models,
    summary_of,
)

from backend_proxy.event_relay import RelayedStream
from backend_proxy.host_client import HostClient
from backend_proxy.local_trainings import LocalTrainings
from backend_proxy.routing_table import RoutedTo
from backend_proxy.schemas import RoutedModelDetail, RoutedModelSummary
from backend_proxy.training_backend import EventStream

# The host's own ceiling on a page of its list.
HOST_PAGE_SIZE = 500


class ModelBackend(Protocol):
    """The models of one place."""

    routed_to: RoutedTo

    async def first_models(
        self, wanted: ModelFilter, count: int
    ) -> tuple[list[RoutedModelSummary], int]:
        """The first ``count`` models matching ``wanted`` (newest first), and how many match."""
        ...

    async def detail(self, model_id: str) -> RoutedModelDetail: ...

    async def download(self, model_id: str, archive_format: ArchiveFormat) -> EventStream:
        """The model as one archive, as its bytes are made (or relayed)."""
        ...

    async def delete(self, model_id: str, *, force: bool) -> ModelDeleted: ...


class HostModels:
    """The host's models, through its ``/models`` routes."""

    routed_to: RoutedTo = "host_service"

    def __init__(self, client: HostClient) -> None:
        self._client = client

    async def first_models(
        self, wanted: ModelFilter, count: int
    ) -> tuple[list[RoutedModelSummary], int]:
        found: list[RoutedModelSummary] = []
        total = 0
        while True:
            limit = max(1, min(HOST_PAGE_SIZE, count - len(found)))
            params = {**wanted.query_params(), "limit": limit, "offset": len(found)}
            page = await self._client.list_models(params)
            total = page.total
            found += [RoutedModelSummary(**dict(m), routed_to="host_service") for m in page.models]
            if not page.models or len(found) >= min(count, total):
                return found[:count], total

    async def detail(self, model_id: str) -> RoutedModelDetail:
        model = await self._client.model(model_id)
        return RoutedModelDetail(**dict(model), routed_to="host_service")

    async def download(self, model_id: str, archive_format: ArchiveFormat) -> EventStream:
        return RelayedStream(await self._client.open_model_download(model_id, archive_format))

    async def delete(self, model_id: str, *, force: bool) -> ModelDeleted:
        return await self._client.delete_model(model_id, force=force)


class LocalModels:
    """The fallback runs' models, in this backend's models folder."""

    routed_to: RoutedTo = "local"

    def __init__(self, models_dir: Path, trainings: LocalTrainings) -> None:
        self._models_dir = models_dir
        self._trainings = trainings

    async def first_models(
        self, wanted: ModelFilter, count: int
    ) -> tuple[list[RoutedModelSummary], int]:
        owners = await self._trainings.model_owners()
        folders = await to_thread.run_sync(scan_models, self._models_dir)
        summaries = [
            RoutedModelSummary(**dict(summary_of(m, owners.get(m.folder))), routed_to="local")
            for m in folders
        ]
        matching = [summary for summary in summaries if wanted.matches(summary)]
        return matching[:count], len(matching)

    async def has(self, model_id: str) -> bool:
        try:
            await self._find(model_id)
        except ModelNotFoundError:
            return False
        return True

    async def detail(self, model_id: str) -> RoutedModelDetail:
        model = await self._find(model_id)
        owners = await self._trainings.model_owners()
        detail = await to_thread.run_sync(detail_of, model, owners.get(model.folder))
        return RoutedModelDetail(**dict(detail), routed_to="local")

    async def download(self, model_id: str, archive_format: ArchiveFormat) -> EventStream:
        model = await self._find(model_id)
        chunks: AsyncIterator[bytes] = iterate_in_threadpool(archive_chunks(model, archive_format))
        return _AsyncChunks(chunks)

    async def delete(self, model_id: str, *, force: bool) -> ModelDeleted:
        model = await self._find(model_id)
        owners = await self._trainings.model_owners()
        return await to_thread.run_sync(
            lambda: delete_model(self._models_dir, model, owners, force=force)
        )

    async def _find(self, model_id: str) -> ModelFolder:
        return await to_thread.run_sync(find_model, self._models_dir, model_id)


class _AsyncChunks:
    """An async iterator of chunks with the ``aclose`` an event stream has."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        return None
