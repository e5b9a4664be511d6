"""Ranker lifecycle: learned ranker versions and which one serves (activation history); the request of each
recommendation (to learn from its feedback); „passt nicht“ of an asker with the vector of its need.

Revision ID: 0004_rankers
Revises: 0003_keys
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_rankers"
down_revision = "0003_keys"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("request", _JSON, nullable=True))
    op.create_table(
        "ranker_versions",
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("features", _JSON, nullable=False),
        sa.Column("metrics", _JSON, nullable=False),
        sa.Column("window_start", _TS, nullable=True),
        sa.Column("window_end", _TS, nullable=True),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_ranker_versions"),
    )
    op.create_table(
        "ranker_activations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ranker_activations"),
    )
    op.create_table(
        "declines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("asker", sa.String(100), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("recommendation_id", sa.String(40), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_declines"),
        sa.UniqueConstraint("recommendation_id", "entity_id", name="uq_declines_recommendation_id_entity_id"),
    )
    op.create_index("ix_declines_entity_id", "declines", ["entity_id"])
    op.create_index("ix_declines_asker_task", "declines", ["asker", "task"])


def downgrade() -> None:
    op.drop_index("ix_declines_asker_task", "declines")
    op.drop_index("ix_declines_entity_id", "declines")
    op.drop_table("declines")
    op.drop_table("ranker_activations")
    op.drop_table("ranker_versions")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("request")
