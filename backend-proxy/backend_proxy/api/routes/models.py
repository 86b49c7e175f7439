"""``/api/models``: the host's models and the fallback runs', one namespace."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from training_sessions.http.archives import ARCHIVE_OK, archive_download
from training_sessions.http.errors import error_responses, json_error_responses
from training_sessions.http.events import HeldStreamResponse
from training_sessions.models import (
    DeleteModelQuery,
    DownloadQuery,
    ModelDeleted,
    ModelListQuery,
)

from backend_proxy.api.deps import ModelIdPath, ModelsDep, StreamSlotsDep
from backend_proxy.api.event_streams import TOO_MANY_STREAMS_RESPONSE
from backend_proxy.schemas import (
    RoutedModelDetail,
    RoutedModelList,
    UnavailableBody,
)

router = APIRouter(prefix="/api/models", tags=["models"])
ONE_MODEL_ERRORS = {
    **error_responses(401, 404, 422, 502),
    **error_responses(503, model=UnavailableBody),
}
ARCHIVE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: ARCHIVE_OK,
    **json_error_responses(401, 404, 422, 502),
    **json_error_responses(503, model=UnavailableBody),
    **TOO_MANY_STREAMS_RESPONSE,
}


@router.get(
    "",
    responses={**error_responses(422)},
)
async def list_models(
    models: ModelsDep, query: Annotated[ModelListQuery, Query()]
) -> RoutedModelList:
    """Models of the host and of the fallback runs, newest first."""
    return await models.list_models(query.to_filter())


@router.get("/{model_id}", responses=ONE_MODEL_ERRORS)
async def read_model(model_id: ModelIdPath, models: ModelsDep) -> RoutedModelDetail:
    """One model: its summary, evaluation, features, strategy and files."""
    return await models.detail(model_id)


@router.get(
    "/{model_id}/download",
    response_class=StreamingResponse,
    responses=ARCHIVE_RESPONSE,
)
async def download_model(
    model_id: ModelIdPath,
    models: ModelsDep,
    slots: StreamSlotsDep,
    request: Request,
    query: Annotated[DownloadQuery, Query()],
) -> HeldStreamResponse:
    """The model as one .tar.gz (or .zip), streamed; relayed from the host for a host model."""
    return await archive_download(
        slots, request, model_id, query.format, lambda: models.download(model_id, query.format)
    )


@router.delete(
    "/{model_id}",
    responses={**ONE_MODEL_ERRORS, **error_responses(409)},
)
async def delete_model(
    model_id: ModelIdPath, models: ModelsDep, query: Annotated[DeleteModelQuery, Query()]
) -> ModelDeleted:
    """Remove the model's folder and KTRDR's copy; 409 while a training names it (unless
    ?force=true)."""
    return await models.delete(model_id, force=query.force)
