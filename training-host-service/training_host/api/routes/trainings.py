"""The service's own training API: start, list, status, performance, stop."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from training_sessions.contract import (
    MAX_LIST_OFFSET,
    StartMultiSymbolBody,
    StartTrainingBody,
    StartTrainingResponse,
    TagsBody,
    TrainingDeleted,
    TrainingList,
    TrainingPerformance,
    TrainingStatus,
)
from training_sessions.http.errors import error_responses, json_error_responses
from training_sessions.http.events import (
    EVENT_STREAM_RESPONSE,
    EventStreamResponse,
    LastEventIdHeader,
    limited_event_stream,
    open_event_stream,
)
from training_sessions.http.list_filters import TrainingFilters
from training_sessions.http.logs import LOG_RESPONSE, LogTailQuery

from training_host.api.deps import (
    AUTH,
    EventFeedDep,
    ManagerDep,
    StreamSlotsDep,
    TrainingIdPath,
)

# 503 on every route: the service is stopping, or its database is unavailable.
router = APIRouter(
    prefix="/trainings", tags=["trainings"], dependencies=AUTH, responses=error_responses(401, 503)
)
START_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": StartTrainingResponse, "description": "This id already names the same training"},
    **error_responses(409, 413, 422, 429, 503),
}
ONE_TRAINING_ERRORS = error_responses(404, 422)
# Routes answering text (a stream, a log) still answer errors as JSON.
TEXT_ROUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    **json_error_responses(401, 404, 422, 503),
}
STREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    **TEXT_ROUTE_ERRORS,
    **json_error_responses(429),
}


def _start(
    manager: ManagerDep, body: StartTrainingBody | StartMultiSymbolBody, response: Response
) -> StartTrainingResponse:
    view, created = manager.submit(
        body.to_request(), body.training_id, deadline=_aware(body.start_deadline)
    )
    # 202: accepted for background work; 200: this id already names the same training.
    response.status_code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
    return StartTrainingResponse(
        **TrainingStatus.from_view(view, manager.settings).model_dump(), created=created
    )


def _aware(instant: datetime | None) -> datetime | None:
    # An instant without an offset is read as UTC, as every timestamp of this API.
    if instant is None or instant.tzinfo is not None:
        return instant
    return instant.replace(tzinfo=UTC)


@router.post("/start", status_code=status.HTTP_202_ACCEPTED, responses=START_RESPONSES)
def start_training(
    body: StartTrainingBody, manager: ManagerDep, response: Response
) -> StartTrainingResponse:
    """Queue a training (the default strategy when none is named)."""
    return _start(manager, body, response)


@router.post("/start-multi-symbol", status_code=status.HTTP_202_ACCEPTED, responses=START_RESPONSES)
def start_multi_symbol_training(
    body: StartMultiSymbolBody, manager: ManagerDep, response: Response
) -> StartTrainingResponse:
    """Queue a training over several symbols and timeframes."""
    return _start(manager, body, response)


@router.get("", responses=error_responses(422))
def list_trainings(
    manager: ManagerDep,
    filters: TrainingFilters,
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=MAX_LIST_OFFSET),
) -> TrainingList:
    """Trainings, newest first, filtered by status, strategy, symbol, timeframe, tag, dates."""
    views, total = manager.list(limit=limit, offset=offset, where=filters)
    items = [TrainingStatus.from_view(v, manager.settings) for v in views]
    return TrainingList(items=items, total=total, limit=limit, offset=offset)


@router.get("/{training_id}/status", responses=ONE_TRAINING_ERRORS)
def read_training_status(training_id: TrainingIdPath, manager: ManagerDep) -> TrainingStatus:
    """Status, progress and latest metrics of one training."""
    return TrainingStatus.from_view(manager.get(training_id), manager.settings)


@router.get("/{training_id}/performance", responses=ONE_TRAINING_ERRORS)
def read_training_performance(
    training_id: TrainingIdPath, manager: ManagerDep
) -> TrainingPerformance:
    """Per-epoch history, test metrics and the majority baseline."""
    return TrainingPerformance.from_performance(manager.performance(training_id))


@router.post("/{training_id}/stop", responses={**ONE_TRAINING_ERRORS, **error_responses(409, 413)})
def stop_training(training_id: TrainingIdPath, manager: ManagerDep) -> TrainingStatus:
    """Ask a queued or running training to stop; a finished one is a 409 naming its status."""
    view = manager.stop(training_id, refuse_finished=True)
    body = TrainingStatus.from_view(view, manager.settings)
    return body.model_copy(update={"stop_requested": True})


@router.delete("/{training_id}", responses={**ONE_TRAINING_ERRORS, **error_responses(409, 413)})
def delete_training(training_id: TrainingIdPath, manager: ManagerDep) -> TrainingDeleted:
    """Remove a finished training's rows, events, checkpoint and log; its model stays."""
    removed = manager.delete(training_id)
    return TrainingDeleted(training_id=training_id, deleted=True, files_removed=list(removed))


@router.patch("/{training_id}", responses={**ONE_TRAINING_ERRORS, **error_responses(413)})
def update_training_tags(
    training_id: TrainingIdPath, body: TagsBody, manager: ManagerDep
) -> TrainingStatus:
    """Replace a training's tags; the answer is its status with them."""
    view = manager.set_tags(training_id, body.unique_tags())
    return TrainingStatus.from_view(view, manager.settings)


@router.post(
    "/{training_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**ONE_TRAINING_ERRORS, **error_responses(409, 413, 429, 503)},
)
def resume_training(training_id: TrainingIdPath, manager: ManagerDep) -> TrainingStatus:
    """Queue a failed, cancelled or interrupted training again, from its checkpoint."""
    return TrainingStatus.from_view(manager.resume(training_id).view, manager.settings)


@router.get(
    "/{training_id}/events",
    response_class=EventStreamResponse,
    responses={**EVENT_STREAM_RESPONSE, **STREAM_ERRORS},
)
async def stream_training_events(
    training_id: TrainingIdPath,
    request: Request,
    feed: EventFeedDep,
    slots: StreamSlotsDep,
    last_event_id: LastEventIdHeader = "",
) -> EventStreamResponse:
    """Server-Sent Events of one training; send Last-Event-ID to resume after a drop."""
    opening = partial(open_event_stream, feed, training_id, last_event_id)
    return await limited_event_stream(slots, request, opening)


@router.get(
    "/{training_id}/logs",
    response_class=PlainTextResponse,
    responses={**LOG_RESPONSE, **TEXT_ROUTE_ERRORS},
)
def read_training_logs(
    training_id: TrainingIdPath, manager: ManagerDep, tail: LogTailQuery = None
) -> PlainTextResponse:
    """The training's log (worker output, data report, warnings), ``tail`` last lines."""
    return PlainTextResponse(manager.log(training_id, tail))
