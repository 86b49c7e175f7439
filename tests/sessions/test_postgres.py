"""The persistence tests again, against a real PostgreSQL server (tests/fixtures/postgres.py).

Each test gets a database of its own on that server, so lists and counts start empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.postgres import fresh_database
from tests.sessions.test_queue import (
    test_delete_queued_session_conflicts_then_works_once_stopped,
    test_list_is_newest_first_filtered_and_paginated,
    test_shutdown_refuses_new_sessions_and_interrupts_queued,
    test_submit_same_id_and_request_returns_existing_session,
    test_submit_same_id_with_other_request_conflicts,
)
from tests.sessions.test_recovery import (
    test_killed_service_session_resumes_on_next_start_with_same_weights,
    uninterrupted_weights,
)
from tests.sessions.test_workers import (
    test_sessions_run_to_completed_one_at_a_time_in_order,
)

pytestmark = pytest.mark.postgres

__all__ = [
    "test_delete_queued_session_conflicts_then_works_once_stopped",
    "test_killed_service_session_resumes_on_next_start_with_same_weights",
    "test_list_is_newest_first_filtered_and_paginated",
    "test_sessions_run_to_completed_one_at_a_time_in_order",
    "test_shutdown_refuses_new_sessions_and_interrupts_queued",
    "test_submit_same_id_and_request_returns_existing_session",
    "test_submit_same_id_with_other_request_conflicts",
    "uninterrupted_weights",
]


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server."""
    with fresh_database(postgres_url, "sessions") as url:
        yield url
