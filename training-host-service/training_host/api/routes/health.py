"""Liveness (``/health``, cheap and open) and a detailed report (``/health/detailed``)."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from training_engine.device import resolve_device
from training_engine.errors import DeviceUnavailableError
from training_sessions.http.errors import error_responses

from training_host import __version__
from training_host.api.deps import AUTH, ManagerDep, RunnerDep, SettingsDep
from training_host.cluster import cluster_view

router = APIRouter(prefix="/health", tags=["health"])


@router.get("")
async def read_health(request: Request) -> dict[str, Any]:
    """Liveness, also in KTRDR's words (``healthy``, ``worker_status``); no database."""
    manager = request.app.state.manager
    running = manager.active_ids()
    busy = len(running) >= manager.settings.max_concurrent_jobs
    registrar = getattr(request.app.state, "ktrdr_registrar", None)
    if registrar is not None:
        registrar.health_seen()
    return {
        "status": "ok",
        "healthy": True,
        "service": "training-host",
        "timestamp": datetime.now(UTC).isoformat(),
        "worker_status": "busy" if busy else "idle",
        "current_operation": running[0] if running else None,
    }


@router.get("/detailed", dependencies=AUTH, responses=error_responses(401))
def read_health_detailed(
    request: Request, settings: SettingsDep, manager: ManagerDep, runner: RunnerDep
) -> dict[str, Any]:
    """Version, uptime, device, session counts, database and disk; the cluster's nodes."""
    try:
        device: str = str(resolve_device(settings.default_device))
    except DeviceUnavailableError as exc:
        device = f"unavailable: {exc}"
    counts = manager.counts()
    database_ok = manager.database_reachable()
    disk = shutil.disk_usage(settings.models_dir)
    disk_ok = disk.free >= settings.min_free_disk_bytes
    cluster = cluster_view(runner, manager)
    cluster_ok = cluster is None or cluster["reachable"]
    problems = [
        *([] if database_ok else ["database unreachable"]),
        *([] if cluster_ok else ["ray cluster unreachable"]),
        *([] if disk_ok else [f"less than {settings.min_free_disk_bytes} bytes free on disk"]),
    ]
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "version": __version__,
        "uptime_seconds": round(time.monotonic() - request.app.state.started_at, 3),
        "device": device,
        "active_sessions": counts.get("running", 0),
        "queued_sessions": counts.get("queued", 0),
        "database_reachable": database_ok,
        "disk_free_bytes": disk.free,  # of models_dir's disk; its path is not told
        "disk_ok": disk_ok,
        "executor": settings.executor,
        **({} if cluster is None else {"cluster": cluster}),
    }
