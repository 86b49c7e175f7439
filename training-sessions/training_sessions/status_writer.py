"""The one place a session changes status: the transition table, over the store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training_sessions.errors import InvalidTransitionError
from training_sessions.observer import SessionObserver, notify
from training_sessions.store import NewEvent, SessionStore
from training_sessions.types import ACTIVE_STATUSES, SessionStatus


def status_event(status: SessionStatus, error: str | None = None) -> NewEvent:
    """The ``status`` entry of the event log."""
    return ("status", {"status": status.value, "error": error})


class StatusWriter:
    """Moves sessions between statuses as :data:`~training_sessions.types.TRANSITIONS` allows.

    The service (submit, stop, resume, recovery) and the supervisors (launch, final
    results) share one; it holds no state of its own and no lock.
    """

    def __init__(self, store: SessionStore, observer: SessionObserver) -> None:
        self._store = store
        self._observer = observer

    def move(
        self,
        training_id: str,
        old: SessionStatus,
        new: SessionStatus,
        events: Sequence[NewEvent] = (),
        **values: Any,
    ) -> None:
        """Move a session from ``old`` to ``new`` (other columns may change with it).

        The table allows a final status to change only one way: failed and cancelled
        back to queued, by a client's resume; completed never changes. Leaving the
        active statuses clears the phase. The status event (after ``events``) is
        logged in the same transaction, and the write is a compare-and-set on ``old``.

        Raises:
            InvalidTransitionError: the table forbids ``old -> new``, or the stored
                status is no longer ``old`` (changed under the caller, or deleted).
        """
        if not old.can_move_to(new):
            raise InvalidTransitionError(f"training {training_id}: {old} -> {new} is not allowed")
        if new not in ACTIVE_STATUSES:
            values.setdefault("phase", None)
        logged = [*events, status_event(new, values.get("error"))]
        if not self._store.move(training_id, old, new, logged, **values):
            row = self._store.get(training_id)
            now = row.status if row is not None else "deleted"
            raise InvalidTransitionError(
                f"training {training_id}: cannot move {old} -> {new}, it is {now}"
            )
        notify(self._observer, "on_status", training_id, old, new)
