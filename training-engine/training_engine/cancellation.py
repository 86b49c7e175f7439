"""Cooperative cancellation, checked by the training loop once per batch."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable


@runtime_checkable
class CancellationSignal(Protocol):
    """Anything the loop can poll: ``threading.Event`` and ``multiprocessing.Event`` both fit."""

    def is_set(self) -> bool: ...


class CancellationToken:
    """A thread-safe, one-way cancel flag.

    The engine never calls ``sys.exit`` nor installs signal handlers; the owner of
    the run (a CLI's Ctrl-C handler, a service's worker) calls :meth:`cancel`, and
    the loop stops after the batch in flight, checkpoints and returns ``cancelled``.
    """

    __slots__ = ("_event", "reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the run to stop at the next batch boundary. Idempotent."""
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        """True once :meth:`cancel` has been called."""
        return self._event.is_set()
