"""``GET .../strategies``: the strategy names a start may use, for the page's start form."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.params import Depends

from training_sessions.contract import StrategyList
from training_sessions.http.errors import error_responses
from training_sessions.requests import available_strategies
from training_sessions.types import RuntimeSettings


def create_strategies_router(
    *,
    prefix: str,
    runtime_settings: Callable[[Request], RuntimeSettings],
    dependencies: Sequence[Depends] = (),
) -> APIRouter:
    """``{prefix}/strategies``: the files of the strategies folder and the default's name.

    Args:
        prefix: ``""`` on the host, ``/api`` on the backend.
        runtime_settings: the settings of the runtime that trains a start, from the request.
        dependencies: the routes' guards (the bearer token).
    """
    router = APIRouter(prefix=prefix, tags=["strategies"], dependencies=list(dependencies))
    responses: dict[int | str, dict[str, Any]] = error_responses(401)

    @router.get("/strategies", responses=responses)
    def list_strategies(request: Request) -> StrategyList:
        """Names a start's ``strategy`` may take, sorted, and the one used when none is named."""
        settings = runtime_settings(request)
        return StrategyList(
            strategies=available_strategies(settings.strategies_dir),
            default_strategy=settings.default_strategy,
        )

    return router
