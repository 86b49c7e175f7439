"""Dependencies the routes declare, defined once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend_proxy.dispatcher import TrainingDispatcher
from backend_proxy.runtime import ProxyRuntime


def get_runtime(request: Request) -> ProxyRuntime:
    runtime: ProxyRuntime = request.app.state.backend_proxy
    return runtime


def get_dispatcher(request: Request) -> TrainingDispatcher:
    return get_runtime(request).dispatcher


RuntimeDep = Annotated[ProxyRuntime, Depends(get_runtime)]
DispatcherDep = Annotated[TrainingDispatcher, Depends(get_dispatcher)]
