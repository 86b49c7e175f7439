"""Add phase, stopped_early and best_epoch to training_sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:00:01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_sessions") as batch:
        batch.add_column(sa.Column("phase", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("stopped_early", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("best_epoch", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_sessions") as batch:
        batch.drop_column("best_epoch")
        batch.drop_column("stopped_early")
        batch.drop_column("phase")
