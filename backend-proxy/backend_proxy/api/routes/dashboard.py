"""``/`` (the dashboard, or this backend's identity as JSON) and offline ``/docs``, ``/redoc``."""

from __future__ import annotations

from training_sessions.http.pages import create_pages_router

router = create_pages_router(service="backend-proxy", api_prefix="/api/trainings")
