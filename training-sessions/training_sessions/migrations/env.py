"""Alembic environment for the session tables (run by ``SessionStore.migrate``).

The version table has its own name so another application's migrations can share the database.
"""

from __future__ import annotations

from training_sessions.schema_migrations import run_env
from training_sessions.store import VERSION_TABLE, Base

run_env(Base.metadata, VERSION_TABLE)
