"""KTRDR's operations API on this host (eras B and C; see docs/ktrdr.md).

An operation id is a session id, or ``host_training_{session_id}`` as KTRDR asks for it
from 2025-10-25 on. Answers are ``{success: true, data: ...}``; KTRDR unwraps ``data``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from training_engine.ktrdr_export import read_summary
from training_sessions.http.errors import error_responses
from training_sessions.service import SessionService
from training_sessions.types import SessionView

from training_host.api.deps import (
    KTRDR_AUTH,
    KtrdrCallerDep,
    ManagerDep,
    ktrdr_operation_session,
)
from training_host.gpu import gpu_status
from training_host.ktrdr import snapshots

router = APIRouter(
    prefix="/api/v1/operations",
    tags=["ktrdr-compatible"],
    dependencies=KTRDR_AUTH,
    responses=error_responses(401, 404, 422),
)
shutdown_router = APIRouter(
    tags=["ktrdr-compatible"], dependencies=KTRDR_AUTH, responses=error_responses(401)
)


def _operation(manager: SessionService, view: SessionView, operation_id: str) -> dict[str, Any]:
    gpu = gpu_status() if snapshots.uses_gpu(view) else None
    summary = read_summary(view.model_path)
    return snapshots.operation(view, operation_id, summary, gpu, manager.settings)


@router.get("/{operation_id}")
def read_operation(
    operation_id: str, manager: ManagerDep, caller: KtrdrCallerDep, force_refresh: bool = False
) -> dict[str, Any]:
    """A training as KTRDR's ``OperationInfo``."""
    del force_refresh  # every answer is read fresh from the session store
    view = ktrdr_operation_session(manager, caller, operation_id)
    return {"success": True, "data": _operation(manager, view, operation_id)}


@router.get("/{operation_id}/metrics")
def read_operation_metrics(
    operation_id: str,
    manager: ManagerDep,
    caller: KtrdrCallerDep,
    cursor: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """Per-epoch metrics after ``cursor``; ``new_cursor`` is where the next call starts."""
    view = ktrdr_operation_session(manager, caller, operation_id)
    entries = snapshots.epoch_entries(manager.performance(view.training_id).history)
    fresh = entries[cursor:]
    return {
        "success": True,
        "data": {
            "operation_id": operation_id,
            "operation_type": "training",
            "metrics": fresh,
            "cursor": cursor,
            "new_cursor": cursor + len(fresh),
        },
    }


@router.delete("/{operation_id}/cancel")
def cancel_operation(
    operation_id: str, manager: ManagerDep, caller: KtrdrCallerDep, reason: str | None = None
) -> dict[str, Any]:
    """Stop the training (it checkpoints); the operation turns ``cancelled``."""
    view = ktrdr_operation_session(manager, caller, operation_id)
    view = manager.stop(view.training_id)
    return {
        "success": True,
        "data": {
            "operation_id": operation_id,
            "status": snapshots.OPERATION_STATUS.get(view.status, "running"),
            "cancelled_at": snapshots.now_iso(),
            "cancellation_reason": reason,
        },
    }


@shutdown_router.post("/backend-shutdown")
async def notice_backend_shutdown(request: Request) -> dict[str, bool]:
    """KTRDR's backend is going down: register again as soon as it is back."""
    registrar = getattr(request.app.state, "ktrdr_registrar", None)
    if registrar is not None:
        registrar.notice_backend_shutdown()
    return {"acknowledged": True}
