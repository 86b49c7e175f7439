"""Session runtime shared by the host service and the proxy fallback; see ``types``."""

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
