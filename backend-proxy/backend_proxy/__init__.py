"""The backend's training proxy: host service behind a circuit breaker, CPU fallback here.

Mount it in any FastAPI backend::

    app.include_router(create_training_router())
    install_error_handlers(app)
    # and in the app's lifespan: async with proxy_runtime(app, settings): ...

or run the standalone backend with ``create_app()`` / ``backend-proxy serve``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training_engine.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from backend_proxy.api.routes import create_training_router
    from backend_proxy.app import create_app
    from backend_proxy.config import Settings, get_settings
    from backend_proxy.errors import install_error_handlers
    from backend_proxy.runtime import ProxyRuntime, proxy_runtime

# Imported on first use, so ``backend-proxy --help`` and a refused setting skip torch.
__getattr__ = lazy_exports(
    __name__,
    {
        "api.routes": ("create_training_router",),
        "app": ("create_app",),
        "config": ("Settings", "get_settings"),
        "errors": ("install_error_handlers",),
        "runtime": ("ProxyRuntime", "proxy_runtime"),
    },
)

__all__ = [
    "ProxyRuntime",
    "Settings",
    "create_app",
    "create_training_router",
    "get_settings",
    "install_error_handlers",
    "proxy_runtime",
]
