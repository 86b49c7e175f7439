"""Dependencies shared by the routes, declared once as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request
from training_sessions.contract import TRAINING_ID_PATTERN
from training_sessions.manager import SessionManager

from training_host.config import Settings
from training_host.errors import AuthenticationError
from training_host.metrics import ServiceMetrics


def get_app_settings(request: Request) -> Settings:
    """The settings this app was built with (``create_app(settings)``)."""
    settings: Settings = request.app.state.settings
    return settings


def get_manager(request: Request) -> SessionManager:
    """The session runtime the lifespan started."""
    manager: SessionManager = request.app.state.manager
    return manager


def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ManagerDep = Annotated[SessionManager, Depends(get_manager)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
TrainingIdPath = Annotated[str, Path(pattern=TRAINING_ID_PATTERN)]


def require_token(request: Request, settings: SettingsDep) -> None:
    """Reject the request unless it carries the configured bearer token (when one is set)."""
    if settings.api_token is None:
        return
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    expected = settings.api_token.get_secret_value()
    # compare_digest: the time taken must not reveal how much of the token matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        supplied.strip().encode(), expected.encode()
    ):
        raise AuthenticationError("missing or invalid bearer token (Authorization: Bearer ...)")


AUTH = [Depends(require_token)]


def require_token_unless_ktrdr_open(request: Request, settings: SettingsDep) -> None:
    """KTRDR sends no Authorization header: its routes may be opened on purpose."""
    if settings.ktrdr_routes_without_token:
        return
    require_token(request, settings)


KTRDR_AUTH = [Depends(require_token_unless_ktrdr_open)]
