"""Dependencies the routes declare, defined once.

They are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in its
thread pool, a hop that costs more than the whole lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from training_sessions.contract import TRAINING_ID_PATTERN
from training_sessions.http.auth import bearer_token_guard
from training_sessions.http.events import StreamSlots
from training_sessions.models import MODEL_ID_PATTERN

from backend_proxy.dispatcher import TrainingDispatcher
from backend_proxy.model_dispatcher import ModelDispatcher
from backend_proxy.runtime import ProxyRuntime


async def get_runtime(request: Request) -> ProxyRuntime:
    runtime: ProxyRuntime = request.app.state.backend_proxy
    return runtime


async def get_dispatcher(request: Request) -> TrainingDispatcher:
    return (await get_runtime(request)).dispatcher


async def get_models(request: Request) -> ModelDispatcher:
    return (await get_runtime(request)).models


async def get_stream_slots(request: Request) -> StreamSlots:
    return (await get_runtime(request)).stream_slots


# BACKEND_API_TOKEN, checked by the host service's own code.
require_token = bearer_token_guard(
    lambda request: request.app.state.backend_proxy.settings.api_token
)
AUTH = [Depends(require_token)]

RuntimeDep = Annotated[ProxyRuntime, Depends(get_runtime)]
DispatcherDep = Annotated[TrainingDispatcher, Depends(get_dispatcher)]
ModelsDep = Annotated[ModelDispatcher, Depends(get_models)]
StreamSlotsDep = Annotated[StreamSlots, Depends(get_stream_slots)]
TrainingIdPath = Annotated[str, Path(pattern=TRAINING_ID_PATTERN)]
ModelIdPath = Annotated[str, Path(pattern=MODEL_ID_PATTERN)]
