"""Alembic, run programmatically: the session store and the proxy's routing table use it.

Each owner keeps its own ``migrations/`` folder and its own version table, so
several can share one database. A folder's ``env.py`` calls :func:`run_env`;
the owner calls :func:`upgrade` at start.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, inspect
from sqlalchemy.engine import Connection, Engine


class SchemaMismatchError(RuntimeError):
    """A table exists that the migrations did not create, with other columns."""


def _config(migrations_dir: Path, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["connection"] = connection
    return config


def upgrade(
    engine: Engine,
    migrations_dir: Path,
    version_table: str,
    *,
    revision: str = "head",
    adopt: tuple[Table, str] | None = None,
) -> None:
    """Apply the migrations in ``migrations_dir`` up to ``revision`` (idempotent).

    Args:
        adopt: ``(table, revision)``: a database where ``table`` was created
            without migrations (``create_all``) and no version is recorded is
            stamped at ``revision``, the one that creates that table, provided its
            columns are the same.

    Raises:
        SchemaMismatchError: the table to adopt has other columns.
    """
    with engine.begin() as connection:
        config = _config(migrations_dir, connection)
        if adopt is not None and _needs_adoption(connection, version_table, adopt[0]):
            command.stamp(config, adopt[1])
        command.upgrade(config, revision)


def head_revision(migrations_dir: Path) -> str:
    """The newest revision in ``migrations_dir``."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {migrations_dir}")
    return head


def _needs_adoption(connection: Connection, version_table: str, table: Table) -> bool:
    inspector = inspect(connection)
    if inspector.has_table(version_table) or not inspector.has_table(table.name):
        return False
    found = {column["name"] for column in inspector.get_columns(table.name)}
    expected = {column.name for column in table.columns}
    if found != expected:
        raise SchemaMismatchError(
            f"table {table.name} exists without migrations and its columns differ: "
            f"missing {sorted(expected - found)}, unexpected {sorted(found - expected)}; "
            "move it away or fix it by hand"
        )
    return True


def run_env(target_metadata: MetaData, version_table: str) -> None:
    """The body of a migrations folder's ``env.py``: migrate the connection :func:`upgrade` gave."""
    if context.is_offline_mode():
        raise RuntimeError("these migrations run online only, at the service's start")
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run these migrations through training_sessions.schema_migrations")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=version_table,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
