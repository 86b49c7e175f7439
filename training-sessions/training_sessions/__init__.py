"""Session runtime shared by the host service and the proxy fallback; see ``types``."""

from typing import TYPE_CHECKING

from training_engine.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from training_sessions.observer import NullObserver, SessionObserver
    from training_sessions.service import SessionService
    from training_sessions.types import (
        ACTIVE_STATUSES,
        FINAL_STATUSES,
        SESSION_STATUSES,
        RuntimeSettings,
        SessionPerformance,
        SessionProgress,
        SessionStatus,
        SessionView,
        TrainingRequest,
    )

# The service (SQLAlchemy, the runner) loads on first use: ``training_sessions.types`` stays light.
__getattr__ = lazy_exports(
    __name__,
    {
        "observer": ("NullObserver", "SessionObserver"),
        "service": ("SessionService",),
        "types": (
            "ACTIVE_STATUSES",
            "FINAL_STATUSES",
            "SESSION_STATUSES",
            "RuntimeSettings",
            "SessionPerformance",
            "SessionProgress",
            "SessionStatus",
            "SessionView",
            "TrainingRequest",
        ),
    },
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "SESSION_STATUSES",
    "NullObserver",
    "RuntimeSettings",
    "SessionObserver",
    "SessionPerformance",
    "SessionProgress",
    "SessionService",
    "SessionStatus",
    "SessionView",
    "TrainingRequest",
]
