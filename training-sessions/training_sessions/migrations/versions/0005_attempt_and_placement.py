"""Add attempt, node and node_address to training_sessions.

``attempt`` counts a session's launches (1 for the first, one more for each resume or
recovery); every worker message carries it, so a given-up run's messages are ignored.
``node`` and ``node_address`` say where the last launch ran, as its runner reports it.

Rows written before this revision get the launches their columns imply: none while never
started; ``resume_count`` for a resumed session waiting to run again; one more otherwise.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_sessions") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("node", sa.String(255), nullable=True))
        batch.add_column(sa.Column("node_address", sa.String(255), nullable=True))
    op.execute(
        "UPDATE training_sessions SET attempt = CASE"
        " WHEN started_at IS NULL THEN 0"
        " WHEN status = 'queued' THEN resume_count"
        " ELSE resume_count + 1 END"
    )


def downgrade() -> None:
    with op.batch_alter_table("training_sessions") as batch:
        batch.drop_column("node_address")
        batch.drop_column("node")
        batch.drop_column("attempt")
