"""Who started each training, and the columns the list filters on.

``origin``: ``backend`` (started through this backend; every row before this
revision) or ``host`` (started on the host directly, mirrored from the host's list).
``strategy``, ``symbols``, ``timeframes`` and ``tags`` are written from the row's last
state (``",AAPL,MSFT,"``: a LIKE on ``",AAPL,"`` finds a member), here for the rows
already there.

Revision ID: 0002
Revises: 0001
Create Date: 2025-03-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "proxy_routed_trainings"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as table:
        table.add_column(
            sa.Column("origin", sa.String(8), nullable=False, server_default="backend")
        )
        for name in ("strategy", "symbols", "timeframes", "tags"):
            table.add_column(sa.Column(name, sa.Text(), nullable=True))
    rows = sa.table(
        TABLE,
        sa.column("training_id", sa.String()),
        sa.column("last_state", sa.JSON()),
        sa.column("strategy", sa.Text()),
        sa.column("symbols", sa.Text()),
        sa.column("timeframes", sa.Text()),
    )
    connection = op.get_bind()
    for training_id, state in connection.execute(sa.select(rows.c.training_id, rows.c.last_state)):
        state = state if isinstance(state, dict) else {}
        strategy = state.get("strategy")
        connection.execute(
            rows.update()
            .where(rows.c.training_id == training_id)
            .values(
                strategy=strategy if isinstance(strategy, str) else None,
                symbols=_members(state.get("symbols")),
                timeframes=_members(state.get("timeframes")),
            )
        )


def _members(values: object) -> str | None:
    # The routing table's own spelling (routing_table._members), frozen as of this revision.
    if not isinstance(values, list) or not values:
        return None
    return "," + ",".join(str(value) for value in values) + ","


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as table:
        for name in ("tags", "timeframes", "symbols", "strategy", "origin"):
            table.drop_column(name)
