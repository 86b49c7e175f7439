"""The service's own training API: start, list, status, performance, stop."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status
from training_sessions.types import SESSION_STATUSES, TrainingRequest

from training_host.api.deps import AUTH, ManagerDep
from training_host.errors import InvalidParameterError
from training_host.schemas import (
    PerformanceBody,
    StartMultiSymbolBody,
    StartTrainingBody,
    StartTrainingResponse,
    TrainingListBody,
    TrainingStatusBody,
)

router = APIRouter(prefix="/trainings", tags=["trainings"], dependencies=AUTH)


def _start(
    manager: ManagerDep, request: TrainingRequest, training_id: str | None, response: Response
) -> StartTrainingResponse:
    view, created = manager.submit(request, training_id)
    # 202: accepted for background work; 200: this id already names the same training.
    response.status_code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
    body = TrainingStatusBody.from_view(view)
    return StartTrainingResponse(**body.model_dump(), created=created)


@router.post("/start", status_code=status.HTTP_202_ACCEPTED)
def start_training(
    body: StartTrainingBody, manager: ManagerDep, response: Response
) -> StartTrainingResponse:
    """Queue a training (the default strategy when none is named)."""
    return _start(manager, body.to_request(), body.training_id, response)


@router.post("/start-multi-symbol", status_code=status.HTTP_202_ACCEPTED)
def start_multi_symbol_training(
    body: StartMultiSymbolBody, manager: ManagerDep, response: Response
) -> StartTrainingResponse:
    """Queue a training over several symbols and timeframes."""
    return _start(manager, body.to_request(), body.training_id, response)


@router.get("")
def list_trainings(
    manager: ManagerDep,
    status_filter: str | None = Query(default=None, alias="status"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0),
) -> TrainingListBody:
    """Trainings, newest first, optionally filtered by status."""
    if status_filter is not None and status_filter not in SESSION_STATUSES:
        raise InvalidParameterError(
            f"unknown status '{status_filter}'; expected one of {', '.join(SESSION_STATUSES)}"
        )
    views, total = manager.list(status=status_filter, limit=limit, offset=offset)
    items = [TrainingStatusBody.from_view(v) for v in views]
    return TrainingListBody(items=items, total=total, limit=limit, offset=offset)


@router.get("/{training_id}/status")
def read_training_status(training_id: str, manager: ManagerDep) -> TrainingStatusBody:
    """Status, progress and latest metrics of one training."""
    return TrainingStatusBody.from_view(manager.get(training_id))


@router.get("/{training_id}/performance")
def read_training_performance(training_id: str, manager: ManagerDep) -> PerformanceBody:
    """Per-epoch history, test metrics and the majority baseline."""
    return PerformanceBody.from_performance(manager.performance(training_id))


@router.post("/{training_id}/stop")
def stop_training(training_id: str, manager: ManagerDep) -> TrainingStatusBody:
    """Ask a training to stop; a finished one answers with its final state."""
    return TrainingStatusBody.from_view(manager.stop(training_id))
