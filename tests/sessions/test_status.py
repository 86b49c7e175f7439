"""Session statuses: one transition table, terminal statuses never change."""

from __future__ import annotations

import pytest
from training_sessions.errors import InvalidTransitionError
from training_sessions.manager import SessionManager
from training_sessions.types import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    SESSION_STATUSES,
    TRANSITIONS,
    SessionStatus,
)

from tests.sessions.conftest import SHORT_RUN, request


def test_statuses_keep_the_values_clients_see() -> None:
    assert [str(status) for status in SESSION_STATUSES] == [
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
        "interrupted",
    ]
    assert SessionStatus("cancelled") is SessionStatus.CANCELLED
    assert set(ACTIVE_STATUSES) == {"queued", "running"}
    assert set(FINAL_STATUSES) == {"completed", "failed", "cancelled"}


def test_only_completed_failed_and_cancelled_are_terminal() -> None:
    terminal = {status for status in SessionStatus if status.is_terminal()}

    assert terminal == {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
    assert set(TRANSITIONS) == set(SessionStatus)
    assert SessionStatus.INTERRUPTED.can_move_to(SessionStatus.QUEUED)
    # Terminal, yet resumable from a checkpoint by an explicit resume.
    assert SessionStatus.FAILED.can_move_to(SessionStatus.QUEUED)
    assert not SessionStatus.COMPLETED.can_move_to(SessionStatus.QUEUED)
    assert not SessionStatus.QUEUED.can_move_to(SessionStatus.COMPLETED)


@pytest.mark.parametrize("new", [s for s in SessionStatus if s != SessionStatus.QUEUED])
def test_a_cancelled_session_moves_only_back_to_the_queue(
    paused_manager: SessionManager, new: SessionStatus
) -> None:
    view, _ = paused_manager.submit(request(SHORT_RUN))
    cancelled = paused_manager.stop(view.training_id)

    with pytest.raises(InvalidTransitionError, match="cancelled"):
        paused_manager._set_status(view.training_id, SessionStatus.CANCELLED, new)

    assert paused_manager.get(view.training_id) == cancelled


def test_a_move_from_a_status_the_session_has_left_is_refused(
    paused_manager: SessionManager,
) -> None:
    view, _ = paused_manager.submit(request(SHORT_RUN))
    paused_manager.stop(view.training_id)

    # Queued -> running is allowed, but the session is no longer queued.
    with pytest.raises(InvalidTransitionError, match="it is cancelled"):
        paused_manager._set_status(view.training_id, SessionStatus.QUEUED, SessionStatus.RUNNING)

    assert paused_manager.get(view.training_id).status == SessionStatus.CANCELLED
