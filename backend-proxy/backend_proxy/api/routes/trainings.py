"""``/api/trainings``: the host service's training routes, routed to host or local."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from training_sessions.contract import (
    StartMultiSymbolBody,
    StartTrainingBody,
    TagsBody,
    TrainingDeleted,
)
from training_sessions.http.errors import error_responses, json_error_responses
from training_sessions.http.events import (
    EVENT_STREAM_RESPONSE,
    EventStreamResponse,
    LastEventIdHeader,
    limited_event_stream,
)
from training_sessions.http.logs import LOG_RESPONSE, LogTailQuery

from backend_proxy.api.deps import DispatcherDep, StreamSlotsDep, TrainingIdPath
from backend_proxy.api.event_streams import TOO_MANY_STREAMS_RESPONSE
from backend_proxy.schemas import (
    RoutedStartResponse,
    RoutedTrainingList,
    RoutedTrainingPerformance,
    RoutedTrainingStatus,
    StartBody,
    TrainingListQuery,
    UnavailableBody,
)

router = APIRouter(prefix="/api/trainings", tags=["trainings"])
# The host's 4xx are passed through: its 401 (a wrong host token) and 413 too. A 502: the
# host answered a body its contract does not describe (host and backend versions differ).
START_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": RoutedStartResponse, "description": "This id already names the same training"},
    **error_responses(401, 409, 413, 422, 429, 502),
    **error_responses(503, model=UnavailableBody),
}
ONE_TRAINING_ERRORS = {
    **error_responses(401, 404, 422, 502),
    **error_responses(503, model=UnavailableBody),
}
# Routes answering text (a stream, a log) still answer errors as JSON.
TEXT_ROUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    **json_error_responses(401, 404, 422, 502),
    **json_error_responses(503, model=UnavailableBody),
}


@router.post("/start", status_code=202, responses=START_RESPONSES)
async def start_training(
    body: StartTrainingBody, dispatcher: DispatcherDep, response: Response
) -> RoutedStartResponse:
    """Start a training on the host service, or locally on CPU when it cannot take it."""
    return await _start(dispatcher, body, response)


@router.post("/start-multi-symbol", status_code=202, responses=START_RESPONSES)
async def start_multi_symbol_training(
    body: StartMultiSymbolBody, dispatcher: DispatcherDep, response: Response
) -> RoutedStartResponse:
    """Start a training on several symbols and timeframes."""
    return await _start(dispatcher, body, response)


@router.get(
    "",
    responses={**error_responses(422), **error_responses(503, model=UnavailableBody)},
)
@router.get(
    "/",
    include_in_schema=False,
)
async def list_trainings(
    dispatcher: DispatcherDep, query: Annotated[TrainingListQuery, Query()]
) -> RoutedTrainingList:
    """Every training, newest first: host ones (started here or on the host) and local ones."""
    return await dispatcher.list_trainings(query.to_filter())


@router.get("/{training_id}/status", responses=ONE_TRAINING_ERRORS)
async def read_training_status(
    training_id: TrainingIdPath, dispatcher: DispatcherDep
) -> RoutedTrainingStatus:
    """Progress and latest metrics; the last state seen when the host is unreachable."""
    return await dispatcher.status(training_id)


@router.get("/{training_id}/performance", responses=ONE_TRAINING_ERRORS)
async def read_training_performance(
    training_id: TrainingIdPath, dispatcher: DispatcherDep
) -> RoutedTrainingPerformance:
    """Per-epoch history, test metrics and the majority baseline."""
    return await dispatcher.performance(training_id)


@router.post(
    "/{training_id}/stop",
    responses={
        202: {"model": RoutedTrainingStatus, "description": "Kept until the host is back"},
        **ONE_TRAINING_ERRORS,
        **error_responses(409),
    },
)
async def stop_training(
    training_id: TrainingIdPath, dispatcher: DispatcherDep, response: Response
) -> RoutedTrainingStatus:
    """Cooperative stop; kept and delivered later (202) while the host is down."""
    answer = await dispatcher.stop(training_id)
    response.status_code = 202 if answer.stop_pending else 200
    return answer


@router.post(
    "/{training_id}/resume",
    status_code=202,
    responses={**ONE_TRAINING_ERRORS, **error_responses(409, 413, 429)},
)
async def resume_training(
    training_id: TrainingIdPath, dispatcher: DispatcherDep
) -> RoutedTrainingStatus:
    """Queue a failed, cancelled or interrupted training again, from its checkpoint."""
    return await dispatcher.resume(training_id)


@router.patch("/{training_id}", responses=ONE_TRAINING_ERRORS)
async def update_training_tags(
    training_id: TrainingIdPath, body: TagsBody, dispatcher: DispatcherDep
) -> RoutedTrainingStatus:
    """Replace the training's tags; its status with them."""
    return await dispatcher.set_tags(training_id, body.unique_tags())


@router.delete("/{training_id}", responses={**ONE_TRAINING_ERRORS, **error_responses(409)})
async def delete_training(
    training_id: TrainingIdPath, dispatcher: DispatcherDep
) -> TrainingDeleted:
    """Remove a finished training: rows, events, checkpoint, log (its model stays); 409 while
    queued or running."""
    return await dispatcher.delete(training_id)


@router.get(
    "/{training_id}/events",
    response_class=EventStreamResponse,
    responses={**EVENT_STREAM_RESPONSE, **TEXT_ROUTE_ERRORS, **TOO_MANY_STREAMS_RESPONSE},
)
async def stream_training_events(
    training_id: TrainingIdPath,
    dispatcher: DispatcherDep,
    slots: StreamSlotsDep,
    request: Request,
    last_event_id: LastEventIdHeader = "",
) -> EventStreamResponse:
    """Server-Sent Events of one training, relayed from the host or from the local run."""
    return await limited_event_stream(
        slots, request, lambda: dispatcher.events(training_id, last_event_id)
    )


@router.get(
    "/{training_id}/logs",
    response_class=PlainTextResponse,
    responses={**LOG_RESPONSE, **TEXT_ROUTE_ERRORS},
)
async def read_training_logs(
    training_id: TrainingIdPath, dispatcher: DispatcherDep, tail: LogTailQuery = None
) -> PlainTextResponse:
    """The training's log (worker output, data report, warnings), from host or local run."""
    return PlainTextResponse(await dispatcher.log(training_id, tail))


async def _start(
    dispatcher: DispatcherDep, body: StartBody, response: Response
) -> RoutedStartResponse:
    answer = await dispatcher.start(body)
    # 202: accepted for background work; 200: this id already names the same training.
    response.status_code = 202 if answer.created else 200
    return answer
