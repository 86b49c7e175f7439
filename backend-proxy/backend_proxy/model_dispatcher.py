"""Which backend answers each model request; knows nothing of HTTP.

One namespace: a model id names one model, on the host or here (ids are unique
across both: ``training_sessions.models``). A request about one model is answered by the
backend that has it, chosen once: this backend's models folder if the id is
there, else the host (which answers 404 itself for an id it lacks). The list
merges both, newest first, with one total.
"""

from __future__ import annotations

import logging
from datetime import UTC

from training_sessions.errors import ModelNotFoundError
from training_sessions.models import ArchiveFormat, ModelDeleted, ModelFilter

from backend_proxy.errors import (
    HostAnswerUnreadableError,
    HostConnectionsBusyError,
    HostRejectedError,
    HostUnavailableError,
)
from backend_proxy.model_backends import HostModels, LocalModels, ModelBackend
from backend_proxy.schemas import (
    RoutedModelDetail,
    RoutedModelList,
    RoutedModelSummary,
)
from backend_proxy.training_backend import EventStream

logger = logging.getLogger(__name__)


class ModelDispatcher:
    """Sends each model request to the backend whose folder holds the model."""

    def __init__(self, host: HostModels, local: LocalModels, *, host_enabled: bool) -> None:
        self._host = host
        self._local = local
        self._host_enabled = host_enabled

    async def list_models(self, wanted: ModelFilter) -> RoutedModelList:
        """Host and local models matching ``wanted``, newest first; the host's missing (and
        ``host_reachable: false``) while it cannot be asked."""
        count = wanted.offset + wanted.limit
        models, total = await self._local.first_models(wanted, count)
        host_reachable: bool | None = None
        if self._host_enabled:
            try:
                on_host, host_total = await self._host.first_models(wanted, count)
            except (
                HostUnavailableError,
                HostConnectionsBusyError,
                HostRejectedError,
                HostAnswerUnreadableError,
            ) as exc:
                logger.info("models list without the host's: %s", exc)
                host_reachable = False
            else:
                host_reachable = True
                models += on_host
                total += host_total
        models.sort(key=_newest_first)
        page = models[wanted.offset : wanted.offset + wanted.limit]
        return RoutedModelList(models=page, total=total, host_reachable=host_reachable)

    async def detail(self, model_id: str) -> RoutedModelDetail:
        return await (await self._backend_for(model_id)).detail(model_id)

    async def download(self, model_id: str, archive_format: ArchiveFormat) -> EventStream:
        return await (await self._backend_for(model_id)).download(model_id, archive_format)

    async def delete(self, model_id: str, *, force: bool) -> ModelDeleted:
        return await (await self._backend_for(model_id)).delete(model_id, force=force)

    async def _backend_for(self, model_id: str) -> ModelBackend:
        if await self._local.has(model_id):
            return self._local
        if self._host_enabled:
            return self._host
        raise ModelNotFoundError(model_id)


def _newest_first(model: RoutedModelSummary) -> float:
    created = model.created_at
    if created is None:
        return float("inf")  # undated last
    aware = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    return -aware.timestamp()
