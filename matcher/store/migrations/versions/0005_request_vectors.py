"""Request vectors: the vector of each request text the engine computed when it served it, kept with the
recommendation (so that training a ranker reads it instead of encoding the text again) until the request
texts' retention period ends.

Revision ID: 0005_request_vectors
Revises: 0004_rankers
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_request_vectors"
down_revision = "0004_rankers"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "request_vectors",
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("used_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "text_hash", name="pk_request_vectors"),
    )
    op.create_index("ix_request_vectors_used_at", "request_vectors", ["used_at"])


def downgrade() -> None:
    op.drop_index("ix_request_vectors_used_at", "request_vectors")
    op.drop_table("request_vectors")
