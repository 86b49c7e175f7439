"""Create proxy_routed_trainings.

The same table ``Base.metadata.create_all`` made before migrations existed; such
databases are stamped at this revision (``RoutingTable`` adopts them).

Revision ID: 0001
Revises:
Create Date: 2025-02-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proxy_routed_trainings",
        sa.Column("training_id", sa.String(128), primary_key=True),
        sa.Column("routed_to", sa.String(16), nullable=False),
        sa.Column("fallback_reason", sa.String(32), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_state", sa.JSON(), nullable=False),
        sa.Column("stop_pending", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_proxy_routed_trainings_status", "proxy_routed_trainings", ["status"]
    )
    op.create_index(
        "ix_proxy_routed_trainings_created_at", "proxy_routed_trainings", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_proxy_routed_trainings_created_at", table_name="proxy_routed_trainings")
    op.drop_index("ix_proxy_routed_trainings_status", table_name="proxy_routed_trainings")
    op.drop_table("proxy_routed_trainings")
