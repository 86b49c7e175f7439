"""Alembic environment for the routing table (run by ``RoutingTable``).

Its own version table lets it share a database with the session runtime
(``training_sessions_alembic_version``).
"""

from __future__ import annotations

from training_sessions.schema_migrations import run_env

from backend_proxy.routing_table import VERSION_TABLE, Base

run_env(Base.metadata, VERSION_TABLE)
