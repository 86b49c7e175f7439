"""Dependencies shared by the routes, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from training_sessions.contract import TRAINING_ID_PATTERN
from training_sessions.errors import SessionNotFoundError
from training_sessions.event_feed import EventFeed
from training_sessions.http.auth import (
    AuthenticationError,
    bearer_token_guard,
    check_bearer,
    client_in,
)
from training_sessions.http.events import StreamSlots
from training_sessions.runners import SessionRunner
from training_sessions.service import SessionService
from training_sessions.types import KTRDR_ROUTES, SessionView

from training_host.config import Settings
from training_host.metrics import ServiceMetrics


def get_app_settings(request: Request) -> Settings:
    """The settings this app was built with (``create_app(settings)``)."""
    settings: Settings = request.app.state.settings
    return settings


def get_manager(request: Request) -> SessionService:
    """The session runtime the lifespan started."""
    manager: SessionService = request.app.state.manager
    return manager


def get_runner(request: Request) -> SessionRunner | None:
    """The runner picked from ``executor`` (None: the runtime's local default)."""
    runner: SessionRunner | None = request.app.state.runner
    return runner


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
ManagerDep = Annotated[SessionService, Depends(get_manager)]
EventFeedDep = Annotated[EventFeed, Depends(get_event_feed)]
StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
RunnerDep = Annotated[SessionRunner | None, Depends(get_runner)]
TrainingIdPath = Annotated[str, Path(pattern=TRAINING_ID_PATTERN)]


# The bearer token of this app's settings, when one is set (shared with the backend).
require_token = bearer_token_guard(lambda request: get_app_settings(request).api_token)
AUTH = [Depends(require_token)]


@dataclass(frozen=True, slots=True)
class KtrdrCaller:
    """Who called one of KTRDR's routes, and so which trainings it may see and act on.

    KTRDR sends no token. A caller admitted by its address (``ktrdr_clients``) sees only
    the trainings started through KTRDR's routes; one presenting our bearer token (or any
    caller of a service without a token) sees them all.
    """

    sees_every_training: bool

    def may_see(self, view: SessionView) -> bool:
        return self.sees_every_training or view.started_through == KTRDR_ROUTES

    @property
    def started_through(self) -> str | None:
        """The door a listing is limited to (None: every training)."""
        return None if self.sees_every_training else KTRDR_ROUTES


async def identify_ktrdr_caller(request: Request, settings: SettingsDep) -> KtrdrCaller:
    """The bearer token, or a client address in ``ktrdr_clients``; else 401."""
    authorization = request.headers.get("authorization")
    if settings.api_token is None or authorization is not None:
        check_bearer(authorization or "", settings.api_token)
        return KtrdrCaller(sees_every_training=True)
    client = request.client.host if request.client is not None else None
    if client_in(client, settings.ktrdr_clients):
        return KtrdrCaller(sees_every_training=False)
    raise AuthenticationError(
        "missing bearer token (Authorization: Bearer ...); KTRDR's routes answer without one "
        "only to the addresses in the service's ktrdr_clients setting"
    )


KtrdrCallerDep = Annotated[KtrdrCaller, Depends(identify_ktrdr_caller)]
KTRDR_AUTH = [Depends(identify_ktrdr_caller)]


def ktrdr_session(manager: SessionService, caller: KtrdrCaller, training_id: str) -> SessionView:
    """The session, when this caller may see it; otherwise as if it did not exist (404)."""
    view = manager.get(training_id)
    if not caller.may_see(view):
        raise SessionNotFoundError(training_id)
    return view
