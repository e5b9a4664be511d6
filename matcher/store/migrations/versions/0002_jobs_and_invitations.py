"""Batch jobs: owner and heartbeat of a job (so a lost job is marked failed), its current stage;
the history of invitations actually sent (exposure control of invitation lists).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", TS, nullable=True))
        batch.add_column(sa.Column("stage", sa.String(100), nullable=True))

    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("job_id", sa.String(40), nullable=True),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_invitations"),
        sa.UniqueConstraint("event_id", "entity_id", name="uq_invitations_event_id_entity_id"),
    )
    op.create_index("ix_invitations_event_id", "invitations", ["event_id"])
    op.create_index("ix_invitations_entity_id", "invitations", ["entity_id"])
    op.create_index("ix_invitations_date", "invitations", ["date"])


def downgrade() -> None:
    op.drop_table("invitations")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stage")
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner")
