"""The metrics hook a service gives its session runtime (the host's Prometheus metrics)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class SessionObserver(Protocol):
    """Metrics hook a service implements (Prometheus); subclass it and override what you need."""

    def on_status(self, training_id: str, old: str | None, new: str) -> None:
        """A session moved from ``old`` (None when just created) to ``new``."""
        return None

    def on_epoch(self, training_id: str, epoch_seconds: float, samples_per_second: float) -> None:
        """A session finished an epoch."""
        return None

    def on_queue_length(self, length: int) -> None:
        """The number of queued sessions changed."""
        return None


class NullObserver(SessionObserver):
    """Observes nothing."""


def notify(observer: SessionObserver, method: str, *args: Any) -> None:
    """Call one hook; a broken metrics hook must never break training."""
    try:
        getattr(observer, method)(*args)
    except Exception:
        logger.exception("session observer %s failed", method)
