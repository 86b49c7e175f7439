"""``/strategies``: the strategies this host trains, for the page's start form."""

from __future__ import annotations

from training_sessions.http.strategies import create_strategies_router

from training_host.api.deps import AUTH, get_manager

router = create_strategies_router(
    prefix="", runtime_settings=lambda request: get_manager(request).settings, dependencies=AUTH
)
