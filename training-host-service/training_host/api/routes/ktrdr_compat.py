"""Routes KTRDR backends call under ``/training/...`` (every era; see docs/ktrdr.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from training_engine.device import describe_devices
from training_engine.ktrdr_export import read_summary
from training_sessions.contract import DescribedBy, path_in_answer
from training_sessions.errors import SessionNotFoundError
from training_sessions.http.errors import error_responses
from training_sessions.service import SessionService
from training_sessions.types import FINAL_STATUSES, KTRDR_ROUTES, SessionView

from training_host.api.deps import (
    KTRDR_AUTH,
    KtrdrCallerDep,
    ManagerDep,
    SettingsDep,
    TrainingIdPath,
    ktrdr_session,
)
from training_host.gpu import gpu_status
from training_host.ktrdr import snapshots
from training_host.ktrdr.start_bodies import (
    InlineStartBody,
    KtrdrStartBody,
    parse_start_body,
    request_from,
    session_id_of,
    wants_gpu,
)

router = APIRouter(
    prefix="/training",
    tags=["ktrdr-compatible"],
    dependencies=KTRDR_AUTH,
    responses=error_responses(401),
)

# How long a stop waits for the run to checkpoint, so the answer can say whether it did.
STOP_ANSWER_WAIT_SECONDS = 20.0


class KtrdrStopBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    session_id: str = Field(min_length=1)
    save_checkpoint: bool = True


def _gpu_if_used(view: SessionView) -> dict[str, Any] | None:
    return gpu_status() if snapshots.uses_gpu(view) else None


def _refuse_when_full(manager: SessionService, task_id: str) -> None:
    """Era C: a busy KTRDR worker answers 503 so the backend tries another worker."""
    try:
        manager.get(task_id)
        return  # a repeated dispatch of a known task gets the existing session
    except SessionNotFoundError:
        pass
    if not manager.has_free_slot():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "worker busy: every training slot is in use",
            headers={"Retry-After": "5"},
        )


@router.post(
    "/start", status_code=status.HTTP_200_OK, responses=error_responses(409, 413, 422, 429, 503)
)
def start_ktrdr_training(
    body: Annotated[dict[str, Any], Body(), DescribedBy(KtrdrStartBody)],
    manager: ManagerDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Start a training from any era's KTRDR body (path, inline YAML, or worker task)."""
    parsed = parse_start_body(body)
    session_id = session_id_of(parsed)
    if isinstance(parsed, InlineStartBody) and parsed.task_id is not None:
        _refuse_when_full(manager, parsed.task_id)
    # Remembered with the session: callers admitted by address see only these.
    request = replace(request_from(parsed, settings.strategies_dir), started_through=KTRDR_ROUTES)
    view, created = manager.submit(request, session_id)
    return {
        "success": True,
        "session_id": view.training_id,
        "operation_id": view.training_id,
        "status": "started" if created else snapshots.era_a_status_word(view.status),
        "message": "training started" if created else "training already exists",
        "gpu_allocated": bool(wants_gpu(parsed) and describe_devices()),
    }


@router.post("/stop", responses=error_responses(404, 413, 422))
def stop_ktrdr_training(
    body: KtrdrStopBody, manager: ManagerDep, caller: KtrdrCallerDep
) -> dict[str, Any]:
    """Stop a training; waits (briefly) for its checkpoint so ``checkpoint_saved`` is true."""
    ktrdr_session(manager, caller, body.session_id)
    view = manager.stop(body.session_id)
    try:
        view = manager.wait_for(
            body.session_id, set(FINAL_STATUSES) | {"interrupted"}, STOP_ANSWER_WAIT_SECONDS
        )
    except TimeoutError:
        view = manager.get(body.session_id)
    # Era A's pollers stop on "stopped"; a run that ended first keeps its own word.
    word = "stopped" if view.status not in {"completed", "failed"} else view.status
    return {
        "session_id": view.training_id,
        "status": word,
        "message": f"training {word}",
        "checkpoint_saved": view.checkpoint_path is not None,
        "checkpoint_path": path_in_answer(view.checkpoint_path, manager.settings.checkpoints_dir),
    }


@router.get("/status/{session_id}", responses=error_responses(404, 422))
def read_ktrdr_status(
    session_id: TrainingIdPath, manager: ManagerDep, caller: KtrdrCallerDep
) -> dict[str, Any]:
    """Era A's status snapshot: live progress, then every final figure."""
    view = ktrdr_session(manager, caller, session_id)
    perf = manager.performance(session_id)
    summary = read_summary(view.model_path)
    return snapshots.era_a_status(view, perf, summary, _gpu_if_used(view), manager.settings)


@router.get("/result/{session_id}", responses=error_responses(400, 404, 422))
def read_ktrdr_result(
    session_id: TrainingIdPath, manager: ManagerDep, caller: KtrdrCallerDep
) -> dict[str, Any]:
    """Era B's training result; 400 until the training has completed."""
    view = ktrdr_session(manager, caller, session_id)
    if view.status != "completed":
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"training '{session_id}' is {view.status}; its result exists once it completed",
        )
    summary = read_summary(view.model_path)
    return snapshots.training_result(view, summary, _gpu_if_used(view), manager.settings)


@router.get("/sessions")
def list_ktrdr_sessions(manager: ManagerDep, caller: KtrdrCallerDep) -> dict[str, Any]:
    """The sessions this caller may see, newest first."""
    views, total = manager.list(limit=500, started_through=caller.started_through)
    return {
        "total_sessions": total,
        "sessions": [snapshots.session_item(v, manager.settings) for v in views],
        "timestamp": snapshots.now_iso(),
    }


@router.delete("/sessions/{session_id}", responses=error_responses(404, 409, 413, 422))
def delete_ktrdr_session(
    session_id: TrainingIdPath, manager: ManagerDep, caller: KtrdrCallerDep
) -> dict[str, Any]:
    """Forget a finished session (409 while it is queued or running)."""
    ktrdr_session(manager, caller, session_id)
    manager.delete(session_id)
    return {
        "session_id": session_id,
        "status": "cleaned_up",
        "message": f"session {session_id} cleaned up",
    }
