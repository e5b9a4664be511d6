"""The persistent store: catalog, vector cache, feedback, API keys, audit log, jobs, invitations.

SQLAlchemy 2 Core over SQLite (default ``<data dir>/matcher.db``, WAL; see
:mod:`matcher.settings`) or PostgreSQL (``postgresql+psycopg://…``, for several
replicas on one database). No Flask here: the service, the CLI and batch jobs share it.

:class:`Store` is a facade: it owns the :class:`Database` (engine and transactions)
and one repository per concern, as attributes:

* ``store.db`` (:class:`~matcher.store.db.Database`): the engine, the public transactions
  ``store.db.read()`` and ``store.db.write()``, error translation, the schema revision;
* ``store.catalog`` (:class:`~matcher.store.catalog.Catalog`): entities, topics, catalog version;
* ``store.vectors`` (:class:`~matcher.store.vectors.StoreVectorCache`): the embedder's vector cache;
* ``store.audit`` (:class:`~matcher.store.audit.AuditLog`): audit log, feedback, contacted pairs;
* ``store.keys`` (:class:`~matcher.store.keys.ApiKeys`): API keys;
* ``store.jobs`` (:class:`~matcher.store.job_store.JobStore`): batch jobs;
* ``store.invitations`` (:class:`~matcher.store.invitation_history.InvitationHistory`): invitations sent;
* ``store.rankers`` (:class:`~matcher.store.rankers.RankerVersions`): learned ranker versions, which serves;
* ``store.declines`` (:class:`~matcher.store.declines.Declines`): „passt nicht“ of askers, with their needs' vectors;
* ``store.request_vectors`` (:class:`~matcher.store.request_vectors.RequestVectors`): the vectors of request texts
  as served, kept with the recommendations for training until the request texts' retention period ends.

Its methods (``get_entity``, ``create_key``, …) delegate to them.

Guarantees:

* Every write is one transaction, all or nothing, and every catalog write
  bumps the single ``catalog_version`` row in the same transaction, so a
  reader that sees a version also sees every write up to it. A write across
  repositories opens one ``store.db.write()`` and passes its connection to each.
* The vector cache implements the embedder cache protocol
  (``get_many``/``put_many``), so a restart encodes only texts it has not
  seen; each entity records which vectors are its own (``entity_texts``) so
  deleting it deletes them too.
* API keys are stored as SHA-256 hashes only; the key itself is shown once.
* Erasure (GDPR art. 17) removes an entity, its vectors, its feedback and its
  invitations, replaces its id in the audit log by anonymous tokens (one per
  entry), its names in stored request texts (and deletes those texts' vectors)
  and redacts it from stored jobs, in one transaction; then SQLite's
  write-ahead log is checkpointed (:mod:`matcher.store.erasure`).
* Request texts and their vectors are kept for a retention period only
  (:meth:`Store.purge_requests`).

The schema is created and changed only by the alembic migrations in
``matcher/store/migrations`` (``matcher db upgrade``); :meth:`Store.check_schema`
refuses a database that is not at the newest revision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from matcher.settings import database_url
from matcher.store.audit import ERASED_PREFIX, OUTCOMES, AuditLog
from matcher.store.catalog import Catalog, Entity, ImportReport, entity_text_keys
from matcher.store.db import Database, translated_errors
from matcher.store.declines import Declines, asker_of
from matcher.store.erasure import delete_entity
from matcher.store.invitation_history import InvitationHistory
from matcher.store.job_store import Job, JobStore
from matcher.store.keys import ROLES, ApiKey, ApiKeys
from matcher.store.rankers import DEFAULT_VERSION, HAND_VERSION, Activation, RankerVersion, RankerVersions
from matcher.store.request_vectors import RequestVectors, request_key
from matcher.store.tables import (
    api_keys,
    audit_log,
    catalog_version,
    declines,
    embeddings,
    entities,
    entity_texts,
    entity_topics,
    feedback,
    invitations,
    jobs,
    metadata,
    ranker_activations,
    ranker_versions,
    request_vectors,
)
from matcher.store.vectors import StoreVectorCache

__all__ = [
    "ERASED_PREFIX",
    "DEFAULT_VERSION",
    "HAND_VERSION",
    "OUTCOMES",
    "ROLES",
    "Activation",
    "ApiKey",
    "ApiKeys",
    "AuditLog",
    "Catalog",
    "Database",
    "Declines",
    "ImportReport",
    "InvitationHistory",
    "Job",
    "JobStore",
    "RankerVersion",
    "RankerVersions",
    "RequestVectors",
    "Store",
    "StoreVectorCache",
    "api_keys",
    "asker_of",
    "audit_log",
    "catalog_version",
    "database_url",
    "declines",
    "embeddings",
    "entities",
    "entity_text_keys",
    "entity_texts",
    "entity_topics",
    "feedback",
    "invitations",
    "jobs",
    "metadata",
    "ranker_activations",
    "ranker_versions",
    "request_key",
    "request_vectors",
]


class Store:
    """All persistent state of the service, behind one SQLAlchemy engine.

    Args:
        url: the database URL (default :func:`matcher.settings.database_url`).

    Example:
        >>> store = Store("sqlite:///var/matcher.db")
        >>> store.upgrade()                      # what ``matcher db upgrade`` does
        >>> store.upsert_entities(load_catalog("fixtures/catalog.jsonl"))
        >>> version, catalog = store.snapshot()
        >>> with store.db.read() as conn:        # one transaction of your own
        ...     conn.execute(select(entities.c.id)).scalars().all()
    """

    def __init__(self, url: str | None = None):
        self.db = Database(url)
        self.catalog = Catalog(self.db)
        self.vectors = StoreVectorCache(self.db)
        self.audit = AuditLog(self.db)
        self.keys = ApiKeys(self.db)
        self.jobs = JobStore(self.db)
        self.invitations = InvitationHistory(self.db, self.catalog)
        self.rankers = RankerVersions(self.db)
        self.declines = Declines(self.db)
        self.request_vectors = RequestVectors(self.db)

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    @property
    def url(self) -> str:
        return self.db.url

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def location(self) -> str:
        """The database URL as shown to people (without a password)."""
        return self.db.location

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def close(self) -> None:
        self.db.close()

    # -- schema (see Database)
    def upgrade(self, revision: str = "head") -> str | None:
        """Migrate the schema to ``revision`` (default: the newest); return the revision reached."""
        return self.db.upgrade(revision)

    def schema_revision(self) -> str | None:
        """The revision the database is at (``None``: never migrated)."""
        return self.db.schema_revision()

    def head_revision(self) -> str | None:
        return self.db.head_revision()

    def check_schema(self) -> None:
        """Raise :class:`~matcher.errors.StoreError` unless the database is at the newest revision."""
        self.db.check_schema()

    def ping(self) -> int:
        """The catalog version; raises :class:`~matcher.errors.StoreError` when the database cannot be reached."""
        return self.catalog.version()

    # -- catalog (see Catalog)
    def catalog_version(self) -> int:
        """The version of the catalog: bumped by every catalog write (cheap: one row)."""
        return self.catalog.version()

    def catalog_stamp(self) -> tuple[int, str]:
        """The catalog version and when it was set (:meth:`Catalog.stamp`)."""
        return self.catalog.stamp()

    def serving_state(self) -> tuple[int, int]:
        """The catalog version and the id of the serving ranker's activation, in one statement (what
        each request of a live matcher compares with what it serves)."""
        active = select(func.max(ranker_activations.c.id)).scalar_subquery()
        with translated_errors(), self.db.engine.connect() as conn:
            row = conn.execute(select(catalog_version.c.version, active).where(catalog_version.c.id == 1)).first()
        if row is None:
            return self.catalog.version(), 0   # (raises: the database is not set up)
        return int(row[0]), int(row[1] or 0)

    def snapshot(self) -> tuple[int, list[Entity]]:
        """The whole catalog and its version, ordered by id (:meth:`Catalog.snapshot`)."""
        return self.catalog.snapshot()

    def count_entities(self, kind: str | None = None) -> int:
        return self.catalog.count(kind)

    def get_entity(self, entity_id: str) -> Entity:
        """One entity (contact included). Raises :class:`~matcher.errors.UnknownEntityError`."""
        return self.catalog.get(entity_id)

    def list_entities(self, kind: str | None = None, city: str | None = None, topic: str | None = None,
                      limit: int = 50, offset: int = 0) -> tuple[list[Entity], int]:
        """A page of entities ordered by id, and how many match (:meth:`Catalog.page`)."""
        return self.catalog.page(kind, city, topic, limit=limit, offset=offset)

    def create_entity(self, entity: Entity) -> int:
        """Add a new entity; return the new catalog version (:meth:`Catalog.create`)."""
        return self.catalog.create(entity)

    def replace_entity(self, entity: Entity) -> int:
        """Replace a stored entity as a whole; return the new catalog version (:meth:`Catalog.replace`)."""
        return self.catalog.replace(entity)

    def upsert_entities(self, batch: Iterable[Entity]) -> ImportReport:
        """Create or replace many entities in one transaction (all or nothing)."""
        return self.catalog.upsert(batch)

    def delete_entity(self, entity_id: str, erase: bool = False) -> dict[str, Any]:
        """Delete an entity (with ``erase``: erase it), in one transaction
        (:func:`~matcher.store.erasure.delete_entity`)."""
        return delete_entity(self, entity_id, erase=erase)

    # -- audit and feedback (see AuditLog)
    def record_recommendation(self, *, task: str, query: dict[str, Any], shown: Sequence[str], model_id: str,
                              catalog_version: int, role: str, key_id: str | None = None,
                              asker_id: str | None = None, recommendation_id: str | None = None,
                              tab: str | None = None, request: dict[str, Any] | None = None,
                              request_vector: tuple[str, np.ndarray] | None = None) -> str:
        """Write one audit entry for a recommendation served, with the vector of its request text
        ((model id, vector), as the engine computed it), in one transaction; return its id (for feedback)
        (:meth:`AuditLog.record`)."""
        return self.audit.record(task=task, query=query, shown=shown, model_id=model_id,
                                 catalog_version=catalog_version, role=role, key_id=key_id, asker_id=asker_id,
                                 recommendation_id=recommendation_id, tab=tab, request=request,
                                 request_vector=request_vector)

    def purge_requests(self, days: float) -> dict[str, int]:
        """Forget the request texts of audit entries older than ``days`` days and the request vectors last
        served before then, in one transaction (:meth:`RequestVectors.purge`); return how many of each."""
        return self.request_vectors.purge(dt.timedelta(days=days))

    def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit entries (for staff and tests)."""
        return self.audit.entries(limit)

    def add_feedback(self, recommendation_id: str, entity_id: str, outcome: str, key_id: str | None = None) -> int:
        """Record what became of one recommended entity; return the feedback id (:meth:`AuditLog.add_feedback`)."""
        return self.audit.add_feedback(recommendation_id, entity_id, outcome, key_id=key_id)

    def record_feedback(self, recommendation_id: str, entity_id: str, outcome: str, *, key_id: str | None,
                        tab: str | None) -> tuple[int, bool]:
        """Feedback bound to the caller that got the recommendation, stored once; (id, new?)
        (:meth:`AuditLog.record_feedback`)."""
        return self.audit.record_feedback(recommendation_id, entity_id, outcome, key_id=key_id, tab=tab)

    def contacted_pairs(self) -> set[tuple[str, str]]:
        """(asker, entity) pairs with "contacted" feedback: they know each other already."""
        return self.audit.contacted_pairs()

    def feedback_for(self, entity_id: str) -> list[dict[str, Any]]:
        return self.audit.feedback_for(entity_id)

    # -- API keys (see ApiKeys)
    def create_key(self, role: str, label: str | None = None) -> tuple[ApiKey, str]:
        """Create an API key; return it and the secret key (shown once, stored only as a hash)."""
        return self.keys.create(role, label)

    def authenticate(self, secret: str) -> ApiKey | None:
        """The key a caller presented, or ``None`` if it is unknown or revoked (constant-time compare)."""
        return self.keys.authenticate(secret)

    def list_keys(self) -> list[ApiKey]:
        return self.keys.all()

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key at once. Raises :class:`~matcher.errors.UnknownEntityError` for an unknown key id."""
        self.keys.revoke(key_id)
