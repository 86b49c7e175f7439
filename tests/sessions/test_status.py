"""Session statuses: one transition table; final for now vs never resumable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from training_sessions.errors import InvalidTransitionError
from training_sessions.observer import NullObserver
from training_sessions.service import SessionService
from training_sessions.status_writer import StatusWriter
from training_sessions.store import SessionStore
from training_sessions.types import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    RESUMABLE_STATUSES,
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


@pytest.fixture
def statuses(paused_service: SessionService) -> Iterator[StatusWriter]:
    """The status writer, over its own store on the service's database."""
    store = SessionStore(paused_service.settings.database_url)
    yield StatusWriter(store, NullObserver())
    store.dispose()


def test_only_completed_failed_and_cancelled_are_final() -> None:
    final = {status for status in SessionStatus if status.is_final()}

    assert final == {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
    assert set(TRANSITIONS) == set(SessionStatus)
    assert SessionStatus.INTERRUPTED.can_move_to(SessionStatus.QUEUED)
    # Terminal, yet resumable from a checkpoint by an explicit resume.
    assert SessionStatus.FAILED.can_move_to(SessionStatus.QUEUED)
    assert not SessionStatus.COMPLETED.can_move_to(SessionStatus.QUEUED)
    assert not SessionStatus.QUEUED.can_move_to(SessionStatus.COMPLETED)


def test_completed_is_the_one_final_status_never_resumable() -> None:
    resumable = {status for status in SessionStatus if status.is_resumable()}

    assert resumable == set(RESUMABLE_STATUSES)
    assert resumable == {old for old, new in TRANSITIONS.items() if SessionStatus.QUEUED in new}
    assert set(FINAL_STATUSES) - resumable == {SessionStatus.COMPLETED}
    # Interrupted is resumable and not final: the next start resumes it by itself.
    assert SessionStatus.INTERRUPTED.is_resumable()
    assert not SessionStatus.INTERRUPTED.is_final()


@pytest.mark.parametrize("new", [s for s in SessionStatus if s != SessionStatus.QUEUED])
def test_a_cancelled_session_moves_only_back_to_the_queue(
    paused_service: SessionService, statuses: StatusWriter, new: SessionStatus
) -> None:
    view, _ = paused_service.submit(request(SHORT_RUN))
    cancelled = paused_service.stop(view.training_id)

    with pytest.raises(InvalidTransitionError, match="cancelled"):
        statuses.move(view.training_id, SessionStatus.CANCELLED, new)

    assert paused_service.get(view.training_id) == cancelled


def test_a_move_from_a_status_the_session_has_left_is_refused(
    paused_service: SessionService, statuses: StatusWriter
) -> None:
    view, _ = paused_service.submit(request(SHORT_RUN))
    paused_service.stop(view.training_id)

    # Queued -> running is allowed, but the session is no longer queued.
    with pytest.raises(InvalidTransitionError, match="it is cancelled"):
        statuses.move(view.training_id, SessionStatus.QUEUED, SessionStatus.RUNNING)

    assert paused_service.get(view.training_id).status == SessionStatus.CANCELLED
