"""The service's memory of what waits and what runs: a FIFO queue and the running slots.

The store says what each session *is*; this says what this service is *doing* with it:
which sessions wait here, in submission order, which are being admitted, and which
supervisor runs which. None of it is in the database, so a restart rebuilds it from the
statuses (``SessionService.start``).

One lock guards it, and it is never held across database I/O, a process start or a
wait for another thread: every method only reads and changes memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from training_sessions.errors import QueueFullError, ShuttingDownError


@dataclass(frozen=True, slots=True)
class Capacity:
    """The capacity rule, written once.

    ``max_running`` sessions run at once; beyond the slots free now, at most
    ``max_waiting`` may wait.
    """

    max_running: int
    max_waiting: int

    def free_slots(self, running: int) -> int:
        return max(0, self.max_running - running)

    def admits_one_more(self, running: int, waiting: int) -> bool:
        """Whether one more session may be accepted with ``running`` and ``waiting`` now."""
        return waiting + 1 - self.free_slots(running) <= self.max_waiting


class Supervised(Protocol):
    """What the queue needs of a supervisor."""

    @property
    def training_id(self) -> str: ...

    def is_final(self) -> bool:
        """Its session's final status is decided (it may still be exiting)."""
        ...


S = TypeVar("S", bound=Supervised)


class SessionQueue(Generic[S]):
    """Waiting sessions (FIFO), sessions being admitted, and running supervisors."""

    def __init__(self, capacity: Capacity, on_length: Callable[[int], None]) -> None:
        self.capacity = capacity
        self._on_length = on_length
        self._lock = threading.Lock()
        self._admitted = threading.Condition(self._lock)
        self._waiting: deque[str] = deque()
        self._admitting: set[str] = set()
        self._running: dict[str, S] = {}
        self._closed = False

    # ------------------------------------------------------------ admission

    @contextmanager
    def admission(self, training_id: str) -> Iterator[Callable[[], None]]:
        """Hold a place for a session while the caller writes it; yields ``enqueue``.

        The place counts against the capacity from the start, so concurrent callers
        cannot overfill the queue; if the caller does not call ``enqueue`` (it raised,
        or nothing was created) the place is given back.

        Raises:
            ShuttingDownError: the service is stopping.
            QueueFullError: every slot busy and the queue at its limit.
        """
        with self._lock:
            self._refuse_when_closed()
            running, waiting = len(self._running), len(self._waiting) + len(self._admitting)
            if not self.capacity.admits_one_more(running, waiting):
                raise QueueFullError(
                    f"queue full: {running} running and {waiting} queued "
                    f"(max_queue_size {self.capacity.max_waiting}); retry later"
                )
            self._admitting.add(training_id)

        def enqueue() -> None:
            with self._lock:
                self._admitting.discard(training_id)
                self._waiting.append(training_id)
                length = len(self._waiting)
            self._on_length(length)

        try:
            yield enqueue
        finally:
            with self._lock:
                self._admitting.discard(training_id)
                self._admitted.notify_all()

    def wait_while_admitting(self, training_id: str, timeout: float) -> None:
        """Until the session is no longer being admitted (its row committed or given up)."""
        with self._lock:
            self._admitted.wait_for(lambda: training_id not in self._admitting, timeout)

    def append(self, training_id: str, *, first: bool = False) -> None:
        """Queue a session accepted before (recovered at start, or its run lost): no capacity
        check; ``first`` puts it ahead of the others (it was running already)."""
        with self._lock:
            if first:
                self._waiting.appendleft(training_id)
            else:
                self._waiting.append(training_id)
            length = len(self._waiting)
        self._on_length(length)

    # ------------------------------------------------------------ launching

    def claim_next(self, supervise: Callable[[str], S]) -> S | None:
        """Take the oldest waiting session if a slot is free, with its new supervisor."""
        with self._lock:
            if self._closed or not self._waiting:
                return None
            if not self.capacity.free_slots(len(self._running)):
                return None
            if self._waiting[0] in self._running:
                return None  # resumed while its last run still exits: launched once it has
            supervisor = supervise(self._waiting.popleft())
            self._running[supervisor.training_id] = supervisor
            length = len(self._waiting)
        self._on_length(length)
        return supervisor

    def release(self, supervisor: S) -> None:
        """The supervisor has ended: its slot is free."""
        with self._lock:
            if self._running.get(supervisor.training_id) is supervisor:
                del self._running[supervisor.training_id]

    # ------------------------------------------------------------ one session

    def supervisor(self, training_id: str) -> S | None:
        with self._lock:
            return self._running.get(training_id)

    def take_waiting(self, training_id: str) -> bool:
        """Take a session off the queue; False when it was not waiting."""
        with self._lock:
            if training_id not in self._waiting:
                return False
            self._waiting.remove(training_id)
            length = len(self._waiting)
        self._on_length(length)
        return True

    def is_busy(self, training_id: str) -> bool:
        """Waiting, being admitted, or run by a supervisor whose result is not decided."""
        with self._lock:
            supervisor = self._running.get(training_id)
            return (
                training_id in self._waiting
                or training_id in self._admitting
                or (supervisor is not None and not supervisor.is_final())
            )

    # ------------------------------------------------------------ the whole service

    def close(self) -> tuple[list[str], list[S]]:
        """Refuse every admission and launch from now on; returns what waits and what runs."""
        with self._lock:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            running = list(self._running.values())
        self._on_length(0)
        return waiting, running

    def counts(self) -> dict[str, int]:
        """Sessions running (their result not decided yet) and waiting."""
        with self._lock:
            running = sum(1 for s in self._running.values() if not s.is_final())
            return {"running": running, "queued": len(self._waiting)}

    def active_ids(self) -> tuple[str, ...]:
        """Ids of the sessions running, oldest launch first."""
        with self._lock:
            return tuple(i for i, s in self._running.items() if not s.is_final())

    def has_free_slot(self) -> bool:
        with self._lock:
            return self.capacity.free_slots(len(self._running)) > 0

    def supervisors(self) -> list[S]:
        with self._lock:
            return list(self._running.values())

    def _refuse_when_closed(self) -> None:
        if self._closed:
            raise ShuttingDownError("the training service is shutting down")
