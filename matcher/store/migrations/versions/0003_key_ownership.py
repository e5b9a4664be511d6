"""Per-key ownership and quotas: the number of texts a job encodes (per-key hourly budget), an index on
the job's key; the browser tab a recommendation went to (feedback is bound to it); one feedback row per
(recommendation, entity, outcome).

Revision ID: 0003_keys
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_keys"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("texts", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_key_id", "jobs", ["key_id"])
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("tab", sa.String(64), nullable=True))
    # repeated identical feedback counted once: keep the first row of each (recommendation, entity, outcome)
    op.execute("DELETE FROM feedback WHERE id NOT IN (SELECT MIN(id) FROM feedback "
               "GROUP BY recommendation_id, entity_id, outcome)")
    with op.batch_alter_table("feedback") as batch:
        batch.create_unique_constraint("uq_feedback_recommendation_id_entity_id_outcome",
                                       ["recommendation_id", "entity_id", "outcome"])


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_recommendation_id_entity_id_outcome", type_="unique")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("tab")
    op.drop_index("ix_jobs_key_id", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("texts")
