"""Registering this host as a training worker with a KTRDR backend (era C, 2025-11-10 on).

Follows what KTRDR's own workers do:

- at start, ``POST {backend}/api/v1/workers/register`` (retried with a doubling delay up
  to 30 s while the backend is away or answers 503);
- every ``check_seconds``: when the backend has not health-checked us for three intervals,
  ``GET {backend}/api/v1/workers/{id}``; a 404 means the backend restarted and forgot us,
  so register again, reporting the running session and the ones finished meanwhile;
- after ``POST /backend-shutdown``, register again every 2 s until the backend is back.

The backend's health checks (``GET /health``) are the heartbeat: :meth:`health_seen`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import httpx
from training_engine.device import describe_devices
from training_engine.ktrdr_export import read_summary
from training_sessions.service import SessionService
from training_sessions.types import FINAL_STATUSES, KTRDR_ROUTES

from training_host.config import Settings
from training_host.ktrdr import snapshots

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
MAX_RETRY_DELAY_SECONDS = 30.0
AFTER_SHUTDOWN_RETRY_SECONDS = 2.0
SILENT_INTERVALS = 3  # KTRDR: checked every 10 s, re-registers after 30 s without health calls

# (finished since) -> (running operation id, finished operations to report)
Report = Callable[[datetime | None], tuple[str | None, list[dict[str, Any]]]]


@dataclass
class WorkerRegistrar:
    """Keeps this host registered with one KTRDR backend.

    Args:
        backend_url: the backend's base URL.
        worker_id: stable for this process.
        endpoint_url: the URL the backend reaches this host at.
        capabilities: ``{gpu: bool, ...}`` as KTRDR's workers send them.
        report: (running operation id, finished operations to report), read in a thread.
        check_seconds: how often registration is checked.
    """

    backend_url: str
    worker_id: str
    endpoint_url: str
    capabilities: dict[str, Any]
    report: Report
    check_seconds: float = 10.0
    registrations: int = 0
    _last_health: float | None = None
    _registered_at: datetime | None = None
    _backend_down: asyncio.Event = field(default_factory=asyncio.Event)

    def health_seen(self) -> None:
        """The backend health-checked us: it knows this worker."""
        self._last_health = time.monotonic()

    def notice_backend_shutdown(self) -> None:
        self._backend_down.set()

    async def run(self) -> None:
        """Register, then keep registered until cancelled."""
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as client:
            await self._register_until_done(client, first_delay=1.0)
            while True:
                try:
                    await asyncio.wait_for(self._backend_down.wait(), self.check_seconds)
                except TimeoutError:
                    await self._check(client)
                    continue
                self._backend_down.clear()
                self._last_health = None
                await self._register_until_done(client, first_delay=AFTER_SHUTDOWN_RETRY_SECONDS)

    async def _check(self, client: httpx.AsyncClient) -> None:
        silent_for = None if self._last_health is None else time.monotonic() - self._last_health
        if silent_for is not None and silent_for <= SILENT_INTERVALS * self.check_seconds:
            return
        try:
            response = await client.get(f"{self.backend_url}/api/v1/workers/{self.worker_id}")
        except httpx.HTTPError as exc:
            logger.warning("KTRDR backend %s unreachable: %s", self.backend_url, exc)
            return
        if response.status_code == 404:
            logger.info("KTRDR backend forgot worker %s; registering again", self.worker_id)
            await self._register_until_done(client, first_delay=1.0)

    async def _register_until_done(self, client: httpx.AsyncClient, first_delay: float) -> None:
        delay = first_delay
        while not await self._register_once(client):
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)

    async def _register_once(self, client: httpx.AsyncClient) -> bool:
        attempt_at = datetime.now(UTC)
        current, completed = await anyio.to_thread.run_sync(self.report, self._registered_at)
        body = {
            "worker_id": self.worker_id,
            "worker_type": "training",
            "endpoint_url": self.endpoint_url,
            "capabilities": self.capabilities,
            "current_operation_id": current,
            "completed_operations": completed,
        }
        try:
            response = await client.post(f"{self.backend_url}/api/v1/workers/register", json=body)
        except httpx.HTTPError as exc:
            logger.warning("cannot register with KTRDR backend %s: %s", self.backend_url, exc)
            return False
        if not response.is_success:
            logger.warning(
                "KTRDR backend %s refused registration: %s %s",
                self.backend_url,
                response.status_code,
                response.text[:200],
            )
            return False
        self.registrations += 1
        self._registered_at = attempt_at
        self._last_health = time.monotonic()
        logger.info("registered with KTRDR backend %s as %s", self.backend_url, self.worker_id)
        return True


def session_report(manager: SessionService) -> Report:
    """What a registration reports: the running session, and those finished since."""

    def report(since: datetime | None) -> tuple[str | None, list[dict[str, Any]]]:
        # KTRDR hears of the trainings it started only, never of the host's own.
        active = [
            training_id
            for training_id in manager.active_ids()
            if manager.get(training_id).started_through == KTRDR_ROUTES
        ]
        if since is None:
            return (active[0] if active else None), []
        views, _ = manager.list(limit=50, started_through=KTRDR_ROUTES)
        finished = [
            {
                "operation_id": view.training_id,
                "status": view.status.upper(),
                "result": snapshots.training_result(
                    view, read_summary(view.model_path), None, manager.settings
                )
                if view.status == "completed"
                else None,
                "error_message": view.error,
                "completed_at": snapshots.iso(view.finished_at),
            }
            for view in views
            if view.status in FINAL_STATUSES
            and view.finished_at is not None
            and snapshots.as_utc(view.finished_at) >= since
        ]
        return (active[0] if active else None), finished

    return report


def registrar_for(settings: Settings, manager: SessionService) -> WorkerRegistrar | None:
    """The registrar ``ktrdr_backend_url`` asks for, or None when it is not set."""
    if not settings.ktrdr_backend_url:
        return None
    host = settings.host if settings.host not in {"0.0.0.0", "::", ""} else socket.gethostname()
    endpoint = settings.ktrdr_worker_endpoint_url or f"http://{host}:{settings.port}"
    gpus = [d for d in describe_devices() if d.type in snapshots.GPU_DEVICE_TYPES]
    capabilities: dict[str, Any] = {"gpu": bool(gpus)}
    if gpus:
        capabilities.update({"gpu_type": "CUDA" if gpus[0].type == "cuda" else "MPS"})
        capabilities["gpu_count"] = len(gpus)
    return WorkerRegistrar(
        backend_url=settings.ktrdr_backend_url.rstrip("/"),
        worker_id=settings.ktrdr_worker_id or f"training-host-{uuid.uuid4().hex[:8]}",
        endpoint_url=endpoint.rstrip("/"),
        capabilities=capabilities,
        report=session_report(manager),
        check_seconds=settings.ktrdr_registration_check_seconds,
    )
