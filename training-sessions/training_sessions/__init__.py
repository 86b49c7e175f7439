"""Session runtime shared by the host service and the proxy fallback; see ``types``."""

from typing import TYPE_CHECKING

from training_engine.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from training_sessions.manager import NullObserver, SessionManager, SessionObserver
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

# The manager (SQLAlchemy, torch) loads on first use, so ``training_sessions.types`` stays light.
__getattr__ = lazy_exports(
    __name__,
    {
        "manager": ("NullObserver", "SessionManager", "SessionObserver"),
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
    "SessionManager",
    "SessionObserver",
    "SessionPerformance",
    "SessionProgress",
    "SessionStatus",
    "SessionView",
    "TrainingRequest",
]
