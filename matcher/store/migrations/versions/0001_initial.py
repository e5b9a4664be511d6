"""Initial schema: catalog, vectors, feedback, API keys, audit log, catalog version, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("city", sa.String(200), nullable=True),
        sa.Column("city_key", sa.String(200), nullable=True),
        sa.Column("org_type", sa.String(32), nullable=True),
        sa.Column("record", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_entities"),
    )
    op.create_index("ix_entities_kind", "entities", ["kind"])
    op.create_index("ix_entities_city_key", "entities", ["city_key"])
    op.create_index("ix_entities_org_type", "entities", ["org_type"])

    op.create_table(
        "entity_topics",
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("topic_key", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], name="fk_entity_topics_entity_id_entities",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entity_id", "topic_key", name="pk_entity_topics"),
    )
    op.create_index("ix_entity_topics_topic_key", "entity_topics", ["topic_key"])

    op.create_table(
        "entity_texts",
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("entity_id", "text_hash", name="pk_entity_texts"),
    )
    op.create_index("ix_entity_texts_text_hash", "entity_texts", ["text_hash"])

    op.create_table(
        "embeddings",
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "text_hash", name="pk_embeddings"),
    )
    op.create_index("ix_embeddings_text_hash", "embeddings", ["text_hash"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recommendation_id", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("asker_id", sa.String(64), nullable=True),
        sa.Column("query", JSON, nullable=False),
        sa.Column("shown", JSON, nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("catalog_version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.UniqueConstraint("recommendation_id", name="uq_audit_log_recommendation_id"),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_asker_id", "audit_log", ["asker_id"])

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recommendation_id", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["recommendation_id"], ["audit_log.recommendation_id"],
                                name="fk_feedback_recommendation_id_audit_log"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_recommendation_id", "feedback", ["recommendation_id"])
    op.create_index("ix_feedback_entity_id", "feedback", ["entity_id"])
    op.create_index("ix_feedback_rec_entity", "feedback", ["recommendation_id", "entity_id"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )

    version = op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_version"),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0, "updated_at": dt.datetime.now(dt.UTC)}])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])


def downgrade() -> None:
    for table in ("jobs", "catalog_version", "api_keys", "feedback", "audit_log", "embeddings", "entity_texts",
                  "entity_topics", "entities"):
        op.drop_table(table)
