"""Number each training's events from 1: ``training_events.seq``, the id clients see.

``training_events.id`` counts across every training, so an event stream's ids and a
``Last-Event-ID`` meant something else for each training. ``seq`` is the event's
number within its training (unique per training, only growing); a training's
``event_seq`` is the last number given, and ``end_event_seq`` the number kept for the
``end`` event a stream sends once the training is final (so it shares no id with the
final ``status`` event).

Existing events are numbered in their id order; a final training keeps the next number
for its ``end``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINAL = "('completed', 'failed', 'cancelled')"


def upgrade() -> None:
    with op.batch_alter_table("training_events") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("training_sessions") as batch:
        batch.add_column(sa.Column("event_seq", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("end_event_seq", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE training_events SET seq = (SELECT COUNT(*) FROM training_events AS earlier"
        " WHERE earlier.session_id = training_events.session_id"
        " AND earlier.id <= training_events.id)"
    )
    op.execute(
        "UPDATE training_sessions SET event_seq = COALESCE((SELECT MAX(seq) FROM"
        " training_events WHERE training_events.session_id = training_sessions.id), 0)"
    )
    op.execute(
        "UPDATE training_sessions SET event_seq = event_seq + 1, end_event_seq = event_seq + 1"
        f" WHERE status IN {FINAL}"
    )
    op.create_index(
        "uq_training_events_session_seq", "training_events", ["session_id", "seq"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_training_events_session_seq", table_name="training_events")
    with op.batch_alter_table("training_sessions") as batch:
        batch.drop_column("end_event_seq")
        batch.drop_column("event_seq")
    with op.batch_alter_table("training_events") as batch:
        batch.drop_column("seq")
