"""``/api/trainings``: the host service's training routes, routed to host or local."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from training_sessions.types import SESSION_STATUSES, SessionStatus

from backend_proxy.api.deps import DispatcherDep
from backend_proxy.schemas import TRAINING_ID_PATTERN, StartMultiSymbolBody, StartTrainingBody

router = APIRouter(prefix="/api/trainings", tags=["trainings"])
TrainingId = Annotated[str, Path(pattern=TRAINING_ID_PATTERN)]


@router.post("/start", status_code=202)
async def start_training(body: StartTrainingBody, dispatcher: DispatcherDep) -> JSONResponse:
    """Start a training on the host service, or locally on CPU when it cannot take it."""
    content, status = await dispatcher.start(body.forwarded(), multi_symbol=False)
    return JSONResponse(content, status_code=status)


@router.post("/start-multi-symbol", status_code=202)
async def start_multi_symbol_training(
    body: StartMultiSymbolBody, dispatcher: DispatcherDep
) -> JSONResponse:
    """Start a training on several symbols and timeframes."""
    content, status = await dispatcher.start(body.forwarded(), multi_symbol=True)
    return JSONResponse(content, status_code=status)


@router.get("")
@router.get("/", include_in_schema=False)
async def list_trainings(
    dispatcher: DispatcherDep,
    status: SessionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """Trainings started through this backend, newest first."""
    assert status is None or status in SESSION_STATUSES
    content = await dispatcher.list_trainings(status=status, limit=limit, offset=offset)
    return JSONResponse(content)


@router.get("/{training_id}/status")
async def read_training_status(training_id: TrainingId, dispatcher: DispatcherDep) -> JSONResponse:
    """Progress and latest metrics; the last state seen when the host is unreachable."""
    return JSONResponse(await dispatcher.status(training_id))


@router.get("/{training_id}/performance")
async def read_training_performance(
    training_id: TrainingId, dispatcher: DispatcherDep
) -> JSONResponse:
    """Per-epoch history, test metrics and the majority baseline."""
    return JSONResponse(await dispatcher.performance(training_id))


@router.post("/{training_id}/stop")
async def stop_training(training_id: TrainingId, dispatcher: DispatcherDep) -> JSONResponse:
    """Cooperative stop; kept and delivered later (202) while the host is down."""
    content, status = await dispatcher.stop(training_id)
    return JSONResponse(content, status_code=status)
