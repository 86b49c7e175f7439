"""Add what lists filter on: the strategy's name, symbols, timeframes and tags.

``strategy_name`` is the resolved strategy's name (the default strategy's too, where
the request named none); ``symbols_key``, ``timeframes_key`` and ``tags_key`` hold
their lists as ``|A|B|`` so one ``LIKE '%|A|%'`` finds a member on SQLite and
PostgreSQL alike; ``tags`` is the list itself (issue 20).

Existing rows get them from their stored job (their request where none is stored).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(values: Any) -> str | None:
    if not isinstance(values, list | tuple) or not values:
        return None
    return "|" + "|".join(str(value) for value in values) + "|"


def upgrade() -> None:
    with op.batch_alter_table("training_sessions") as batch:
        batch.add_column(sa.Column("strategy_name", sa.String(128), nullable=True))
        batch.add_column(sa.Column("symbols_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("timeframes_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("tags_key", sa.Text(), nullable=True))
    sessions = sa.table(
        "training_sessions",
        sa.column("id", sa.String),
        sa.column("request", sa.JSON),
        sa.column("job", sa.JSON),
        sa.column("strategy_name", sa.String),
        sa.column("symbols_key", sa.Text),
        sa.column("timeframes_key", sa.Text),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(sessions.c.id, sessions.c.request, sessions.c.job))
    for training_id, request, job in list(rows):
        strategy = (job or {}).get("strategy") or {}
        asked = (request or {}).get("strategy")
        name = strategy.get("name") or (asked if isinstance(asked, str) else None)
        connection.execute(
            sa.update(sessions)
            .where(sessions.c.id == training_id)
            .values(
                strategy_name=name,
                symbols_key=_key(strategy.get("symbols") or (request or {}).get("symbols")),
                timeframes_key=_key(
                    strategy.get("timeframes") or (request or {}).get("timeframes")
                ),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("training_sessions") as batch:
        for column in ("tags_key", "tags", "timeframes_key", "symbols_key", "strategy_name"):
            batch.drop_column(column)
