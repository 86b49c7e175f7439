"""``/models``: the models this host trained, to list, read, download and delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool
from training_sessions.http.archives import ARCHIVE_OK, archive_download
from training_sessions.http.errors import error_responses, json_error_responses
from training_sessions.http.events import HeldStreamResponse
from training_sessions.models import (
    MODEL_ID_PATTERN,
    DeleteModelQuery,
    DownloadQuery,
    ModelDeleted,
    ModelDetail,
    ModelList,
    ModelListQuery,
    archive_chunks,
    delete_model,
    detail_of,
    find_model,
    model_owners,
    scan_models,
    summary_of,
)

from training_host.api.deps import AUTH, ManagerDep, StreamSlotsDep

router = APIRouter(
    prefix="/models", tags=["models"], dependencies=AUTH, responses=error_responses(401, 503)
)
ModelIdPath = Annotated[str, Path(pattern=MODEL_ID_PATTERN)]
ONE_MODEL_ERRORS = error_responses(404, 422)
ARCHIVE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: ARCHIVE_OK,
    **json_error_responses(401, 404, 422, 429, 503),
}


@router.get("", responses=error_responses(422))
def list_models(manager: ManagerDep, query: Annotated[ModelListQuery, Query()]) -> ModelList:
    """The models in the models folder, newest first, with the training that wrote each."""
    owners = model_owners(manager)
    wanted = query.to_filter()
    summaries = [
        summary_of(model, owners.get(model.folder))
        for model in scan_models(manager.settings.models_dir)
    ]
    matching = [summary for summary in summaries if wanted.matches(summary)]
    page = matching[wanted.offset : wanted.offset + wanted.limit]
    return ModelList(models=page, total=len(matching))


@router.get("/{model_id}", responses=ONE_MODEL_ERRORS)
def read_model(model_id: ModelIdPath, manager: ManagerDep) -> ModelDetail:
    """One model: its summary, evaluation, features, strategy and files."""
    model = find_model(manager.settings.models_dir, model_id)
    return detail_of(model, model_owners(manager).get(model.folder))


@router.get("/{model_id}/download", response_class=StreamingResponse, responses=ARCHIVE_RESPONSE)
async def download_model(
    model_id: ModelIdPath,
    manager: ManagerDep,
    slots: StreamSlotsDep,
    request: Request,
    query: Annotated[DownloadQuery, Query()],
) -> HeldStreamResponse:
    """The model as one .tar.gz (or .zip), streamed file by file (no link followed)."""

    async def opening() -> Any:
        model = find_model(manager.settings.models_dir, model_id)
        return iterate_in_threadpool(archive_chunks(model, query.format))

    return await archive_download(slots, request, model_id, query.format, opening)


@router.delete("/{model_id}", responses={**ONE_MODEL_ERRORS, **error_responses(409)})
def delete_one_model(
    model_id: ModelIdPath, manager: ManagerDep, query: Annotated[DeleteModelQuery, Query()]
) -> ModelDeleted:
    """Remove the model's folder and KTRDR's copy; 409 while a training names it (unless
    ?force=true)."""
    models_dir = manager.settings.models_dir
    model = find_model(models_dir, model_id)
    return delete_model(models_dir, model, model_owners(manager), force=query.force)
