"""Dependencies shared by the routes, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from training_sessions.contract import TRAINING_ID_PATTERN
from training_sessions.event_feed import EventFeed
from training_sessions.http.auth import bearer_token_guard
from training_sessions.http.events import StreamSlots
from training_sessions.manager import SessionManager

from training_host.config import Settings
from training_host.metrics import ServiceMetrics


def get_app_settings(request: Request) -> Settings:
    """The settings this app was built with (``create_app(settings)``)."""
    settings: Settings = request.app.state.settings
    return settings


def get_manager(request: Request) -> SessionManager:
    """The session runtime the lifespan started."""
    manager: SessionManager = request.app.state.manager
    return manager


def get_event_feed(request: Request) -> EventFeed:
    """The one reader of the event log every stream follows."""
    feed: EventFeed = request.app.state.event_feed
    return feed


def get_stream_slots(request: Request) -> StreamSlots:
    slots: StreamSlots = request.app.state.stream_slots
    return slots


def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ManagerDep = Annotated[SessionManager, Depends(get_manager)]
EventFeedDep = Annotated[EventFeed, Depends(get_event_feed)]
StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
TrainingIdPath = Annotated[str, Path(pattern=TRAINING_ID_PATTERN)]


# The bearer token of this app's settings, when one is set (shared with the backend).
require_token = bearer_token_guard(lambda request: get_app_settings(request).api_token)
AUTH = [Depends(require_token)]


async def require_token_unless_ktrdr_open(request: Request, settings: SettingsDep) -> None:
    """KTRDR sends no Authorization header: its routes may be opened on purpose."""
    if settings.ktrdr_routes_without_token:
        return
    await require_token(request)


KTRDR_AUTH = [Depends(require_token_unless_ktrdr_open)]
