"""The routing table's schema comes from its own Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from backend_proxy.routing_table import VERSION_TABLE, Base, RoutingTable
from training_sessions.schema_migrations import SchemaMismatchError
from training_sessions.store import VERSION_TABLE as SESSIONS_VERSION_TABLE
from training_sessions.store import SessionStore

from tests.host.test_persistence import _drop_all_tables


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or the test server's database with no tables."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'backend.sqlite3'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    _drop_all_tables(url)
    yield url
    _drop_all_tables(url)


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


def test_new_database_gets_the_table_from_migrations(database_url: str) -> None:
    table = RoutingTable(database_url)
    table.add("t1", "local", fallback_reason="disabled", confirmed=True, last_state={})
    table.close()

    assert _versions(database_url) == {VERSION_TABLE: "0001"}
    reopened = RoutingTable(database_url)  # a second start migrates nothing
    assert reopened.get("t1") is not None
    reopened.close()


def test_shares_a_database_with_the_session_runtime(database_url: str) -> None:
    store = SessionStore(database_url)
    store.migrate()
    store.dispose()
    RoutingTable(database_url).close()

    versions = _versions(database_url)

    assert versions[VERSION_TABLE] == "0001"
    assert versions[SESSIONS_VERSION_TABLE] == SessionStore.head_revision()


def test_table_made_by_create_all_is_adopted_with_its_rows(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    Base.metadata.create_all(engine)  # how the proxy made its table before migrations
    with engine.begin() as connection:
        connection.execute(
            Base.metadata.tables["proxy_routed_trainings"].insert(),
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
    table.close()

    assert pending == ["old"]
    assert _versions(database_url) == {VERSION_TABLE: "0001"}


def test_table_with_other_columns_is_refused_naming_them(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE proxy_routed_trainings (training_id VARCHAR(128), extra INT)")
        )
    engine.dispose()

    with pytest.raises(SchemaMismatchError, match=r"missing \['confirmed'.*unexpected \['extra'\]"):
        RoutingTable(database_url)
