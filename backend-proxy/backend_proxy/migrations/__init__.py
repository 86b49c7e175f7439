"""Alembic migrations of the proxy's routing table (``proxy_routed_trainings``)."""
