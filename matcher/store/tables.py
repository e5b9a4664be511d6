"""The store's tables: one :data:`metadata` that the code and the alembic migrations share.

The schema is created and changed only by the migrations in
``matcher/store/migrations`` (their ``env.py`` compares against :data:`metadata`);
a test checks that the migrations create exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "api_keys",
    "audit_log",
    "catalog_version",
    "declines",
    "embeddings",
    "entities",
    "entity_texts",
    "entity_topics",
    "feedback",
    "invitations",
    "jobs",
    "metadata",
    "ranker_activations",
    "ranker_versions",
    "request_vectors",
]

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})
_JSON = JSON().with_variant(JSONB(), "postgresql")
_TS = DateTime(timezone=True)

entities = Table(
    "entities", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("city", String(200), nullable=True),
    Column("city_key", String(200), nullable=True, index=True),   # casefolded, for filtering
    Column("org_type", String(32), nullable=True, index=True),
    Column("record", _JSON, nullable=False),                        # the validated profile, contact included
    Column("created_at", _TS, nullable=False),
    Column("updated_at", _TS, nullable=False),
)
entity_topics = Table(
    "entity_topics", metadata,
    Column("entity_id", String(64), ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_key", String(200), primary_key=True, index=True),
)
# which cached vectors belong to which entity (kept across updates, so erasure finds old texts' vectors too)
entity_texts = Table(
    "entity_texts", metadata,
    Column("entity_id", String(64), primary_key=True),
    Column("text_hash", String(64), primary_key=True, index=True),
)
embeddings = Table(
    "embeddings", metadata,
    Column("model_id", String(200), primary_key=True),
    Column("text_hash", String(64), primary_key=True, index=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),                  # float32, little-endian
)
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recommendation_id", String(40), nullable=False, unique=True),
    Column("created_at", _TS, nullable=False, index=True),
    Column("key_id", String(16), nullable=True),
    Column("role", String(16), nullable=False),
    Column("task", String(16), nullable=False),
    Column("asker_id", String(64), nullable=True, index=True),
    Column("query", _JSON, nullable=False),                         # summary: no free text
    Column("shown", _JSON, nullable=False),                         # entity ids, best first
    Column("model_id", String(200), nullable=False),
    Column("catalog_version", BigInteger, nullable=False),
    # --- per-key ownership (migration 0003_keys): sha256 of the browser tab token of an anonymous caller
    Column("tab", String(64), nullable=True),
    # --- ranker lifecycle (migration 0004_rankers): the request as the engine read it (text included), so that
    # a ranker can learn from the feedback on it; the rank of an entity is its place in ``shown``
    Column("request", _JSON, nullable=True),
)
feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recommendation_id", String(40), ForeignKey("audit_log.recommendation_id"), nullable=False, index=True),
    Column("entity_id", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("key_id", String(16), nullable=True),
    Column("created_at", _TS, nullable=False),
    UniqueConstraint("recommendation_id", "entity_id", "outcome"),   # migration 0003_keys: idempotent feedback
)
api_keys = Table(
    "api_keys", metadata,
    Column("id", String(16), primary_key=True),                     # public part of the key
    Column("key_hash", String(64), nullable=False),                 # sha256 hex of the whole key
    Column("role", String(16), nullable=False),
    Column("label", String(200), nullable=True),
    Column("created_at", _TS, nullable=False),
    Column("revoked_at", _TS, nullable=True),
)
catalog_version = Table(
    "catalog_version", metadata,
    Column("id", Integer, primary_key=True),                        # always 1
    Column("version", BigInteger, nullable=False),
    Column("updated_at", _TS, nullable=False),
)
# batch jobs (invitation lists, advisor assignment); rows written by matcher/store/job_store.py
jobs = Table(
    "jobs", metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False, index=True),        # queued, running, done, failed
    Column("progress", Float, nullable=False, default=0.0),
    Column("params", _JSON, nullable=False),
    Column("result", _JSON, nullable=True),
    Column("error", _JSON, nullable=True),
    Column("key_id", String(16), nullable=True),
    Column("created_at", _TS, nullable=False),
    Column("updated_at", _TS, nullable=False),
    # --- jobs feature (migration 0002): which process runs the job, its last sign of life
    Column("owner", String(64), nullable=True),
    Column("heartbeat_at", _TS, nullable=True),
    Column("stage", String(100), nullable=True),                    # German label of the current step
    # --- per-key quotas (migration 0003_keys): texts the job encodes (hourly budget of its key); key_id indexed
    Column("texts", Integer, nullable=True),
)
Index("ix_jobs_key_id", jobs.c.key_id)
# --- jobs feature (migration 0002): invitations actually sent, read by invitation jobs for exposure control
invitations = Table(
    "invitations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, index=True),
    Column("entity_id", String(64), nullable=False, index=True),
    Column("date", Date, nullable=False, index=True),               # the date it counts for (the event's, by default)
    Column("job_id", String(40), nullable=True),                    # the invitation job whose list was confirmed
    Column("key_id", String(16), nullable=True),
    Column("created_at", _TS, nullable=False),
    UniqueConstraint("event_id", "entity_id"),
)
# --- ranker lifecycle (migration 0004_rankers): the learned rankers, each with what it was trained on
ranker_versions = Table(
    "ranker_versions", metadata,
    Column("version", String(40), primary_key=True),
    Column("payload", _JSON, nullable=False),                       # the ranker (matcher.engine.ranker)
    Column("features", _JSON, nullable=False),                      # its feature names
    Column("metrics", _JSON, nullable=False),                       # training metrics and the gate's verdict
    Column("window_start", _TS, nullable=True),                     # the feedback it was trained on
    Column("window_end", _TS, nullable=True),
    Column("commit", String(64), nullable=False),                   # git commit of the code, else package version
    Column("created_at", _TS, nullable=False),
)
# which ranker serves: the newest row ("hand" for the hand weights); the rows before it are the history
ranker_activations = Table(
    "ranker_activations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(40), nullable=False),
    Column("reason", String(16), nullable=False),                  # trained, activated, rollback
    Column("created_at", _TS, nullable=False),
)
# „passt nicht“ of an asker: lowers the entity for that asker's similar needs (matcher.engine.demotion)
declines = Table(
    "declines", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asker", String(100), nullable=False),                  # entity:<id>, key:<id> or tab:<hash>
    Column("task", String(16), nullable=False),
    Column("entity_id", String(64), nullable=False, index=True),
    Column("recommendation_id", String(40), nullable=False),
    Column("model_id", String(200), nullable=False),               # the embedding model of the vector
    Column("vector", LargeBinary, nullable=False),                 # the need's vector, float16
    Column("created_at", _TS, nullable=False),
    UniqueConstraint("recommendation_id", "entity_id"),
)
# --- request vectors (migration 0005_request_vectors): the vector of each request text the engine computed
# when it served it, kept with the recommendation so that training reads it instead of encoding it again
# (matcher.store.request_vectors); keyed like the embedder's cache (model id, hash of role and text), purged
# with the request texts after the retention period and when an entity named in the text is erased
request_vectors = Table(
    "request_vectors", metadata,
    Column("model_id", String(200), primary_key=True),
    Column("text_hash", String(64), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),                  # float32, little-endian (as served)
    Column("used_at", _TS, nullable=False, index=True),             # the newest recommendation it was served for
)
Index("ix_declines_asker_task", declines.c.asker, declines.c.task)
Index("ix_feedback_rec_entity", feedback.c.recommendation_id, feedback.c.entity_id)
