"""The routing table on SQLite and on a real PostgreSQL server: it survives a restart, and its
schema comes from its own Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from backend_proxy.routing_table import (
    CREATED_BEFORE_MIGRATIONS,
    VERSION_TABLE,
    RouteFilter,
    RoutingTable,
)
from training_sessions.schema_migrations import SchemaMismatchError
from training_sessions.store import VERSION_TABLE as SESSIONS_VERSION_TABLE
from training_sessions.store import SessionStore

from tests.fixtures.databases import on_both_databases

pytestmark = on_both_databases


def _versions(database_url: str) -> dict[str, str]:
    """The revision recorded in each version table of the database."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            return {
                table: connection.execute(sa.text(f"SELECT version_num FROM {table}")).scalar_one()
                for table in (VERSION_TABLE, SESSIONS_VERSION_TABLE)
                if table in tables
            }
    finally:
        engine.dispose()


def test_routes_survive_a_restart_with_last_state_and_pending_stop(database_url: str) -> None:
    table = RoutingTable(database_url)
    table.add(
        "t-host",
        "host_service",
        fallback_reason=None,
        confirmed=False,
        last_state={"training_id": "t-host", "status": "unknown"},
    )
    table.update(
        "t-host",
        confirmed=True,
        last_state={"training_id": "t-host", "status": "running", "progress": {"percent": 40.0}},
    )
    table.update("t-host", stop_pending=True)
    table.add(
        "t-local",
        "local",
        fallback_reason="breaker_open",
        confirmed=True,
        last_state={"training_id": "t-local", "status": "queued"},
    )
    table.close()

    reopened = RoutingTable(database_url)
    host = reopened.get("t-host")
    local = reopened.get("t-local")
    pending = reopened.pending_stops()
    reopened.close()

    assert host is not None and local is not None
    assert host.routed_to == "host_service"
    assert host.confirmed is True
    assert host.last_state["progress"] == {"percent": 40.0}
    assert host.created_at.tzinfo is not None
    assert local.routed_to == "local"
    assert local.fallback_reason == "breaker_open"
    assert [route.training_id for route in pending] == ["t-host"]


def test_list_is_newest_first_filtered_by_last_status_and_paginated(database_url: str) -> None:
    table = RoutingTable(database_url)
    for i, status in enumerate(["completed", "running", "completed", "running"]):
        table.add(
            f"t{i}",
            "local",
            fallback_reason="disabled",
            confirmed=True,
            last_state={"training_id": f"t{i}", "status": status},
        )

    running, running_total = table.list_routes(RouteFilter(status="running"))
    page, total = table.list_routes(RouteFilter(limit=2, offset=1))
    table.delete("t0")
    _, after_delete = table.list_routes(RouteFilter())
    table.close()

    assert [route.training_id for route in running] == ["t3", "t1"]
    assert running_total == 2
    assert [route.training_id for route in page] == ["t2", "t1"]
    assert total == 4
    assert after_delete == 3


def test_new_database_gets_the_table_from_migrations(database_url: str) -> None:
    table = RoutingTable(database_url)
    table.add("t1", "local", fallback_reason="disabled", confirmed=True, last_state={})
    table.close()

    assert _versions(database_url) == {VERSION_TABLE: "0002"}
    reopened = RoutingTable(database_url)  # a second start migrates nothing
    assert reopened.get("t1") is not None
    reopened.close()


def test_shares_a_database_with_the_session_runtime(database_url: str) -> None:
    store = SessionStore(database_url)
    store.migrate()
    store.dispose()
    RoutingTable(database_url).close()

    versions = _versions(database_url)

    assert versions[VERSION_TABLE] == "0002"
    assert versions[SESSIONS_VERSION_TABLE] == SessionStore.head_revision()


def test_table_made_by_create_all_is_adopted_with_its_rows(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    CREATED_BEFORE_MIGRATIONS.create(engine)  # how the proxy made its table before migrations
    with engine.begin() as connection:
        connection.execute(
            CREATED_BEFORE_MIGRATIONS.insert(),
            {
                "training_id": "old",
                "routed_to": "host_service",
                "fallback_reason": None,
                "confirmed": True,
                "status": "running",
                "last_state": {"status": "running"},
                "stop_pending": True,
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
            },
        )
    engine.dispose()

    table = RoutingTable(database_url)
    pending = [route.training_id for route in table.pending_stops()]
    old = table.get("old")
    table.close()

    assert pending == ["old"]
    assert old is not None and old.origin == "backend"
    assert _versions(database_url) == {VERSION_TABLE: "0002"}


def test_table_with_other_columns_is_refused_naming_them(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE proxy_routed_trainings (training_id VARCHAR(128), extra INT)")
        )
    engine.dispose()

    with pytest.raises(SchemaMismatchError, match=r"missing \['confirmed'.*unexpected \['extra'\]"):
        RoutingTable(database_url)
