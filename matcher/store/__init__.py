"""The persistent store: catalog, vector cache, feedback, API keys, audit log.

SQLAlchemy 2 Core over SQLite (default ``<data dir>/matcher.db``, WAL; see
:mod:`matcher.settings`) or
PostgreSQL (``postgresql+psycopg://…``, for several replicas on one
database). No Flask here: the service, the CLI and batch jobs share it.

Guarantees:

* Every write is one transaction, all or nothing, and every catalog write
  bumps the single ``catalog_version`` row in the same transaction, so a
  reader that sees a version also sees every write up to it.
* The vector cache (``Store.vectors``) implements the embedder cache protocol
  (``get_many``/``put_many``), so a restart encodes only texts it has not
  seen; each entity records which vectors are its own (``entity_texts``) so
  deleting it deletes them too.
* API keys are stored as SHA-256 hashes only; the key itself is shown once.
* Erasure (GDPR art. 17) removes an entity, its vectors and its feedback,
  and replaces its id in the audit log by an anonymous token.

The schema is created and changed only by the alembic migrations in
``matcher/store/migrations`` (``matcher db upgrade``); :meth:`Store.check_schema`
refuses a database that is not at the newest revision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
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
    Text,
    UniqueConstraint,
    and_,
    cast,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, make_url

from matcher.engine.embedding import CachedEmbedder
from matcher.errors import ConflictError, StoreError, UnknownEntityError, ValidationError
from matcher.domain.messages import alternatives, quoted
from matcher.domain.schema import Advisor, Event, Municipality, Organisation, parse_entity
from matcher.settings import database_url
from matcher.text.profile import passages, profile_text

__all__ = [
    "ROLES",
    "OUTCOMES",
    "ApiKey",
    "ImportReport",
    "Store",
    "StoreVectorCache",
    "database_url",
    "entity_text_keys",
    "metadata",
]

Entity = Advisor | Organisation | Event | Municipality

ROLES = ("reader", "editor", "admin")          # each role may do everything the ones before it may
OUTCOMES = ("accepted", "declined", "contacted")
ERASED_PREFIX = "gelöscht-"
_CHUNK = 500                                     # ids per IN (...) clause


# ----------------------------------------------------------------------------- tables
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
)
feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recommendation_id", String(40), ForeignKey("audit_log.recommendation_id"), nullable=False, index=True),
    Column("entity_id", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("key_id", String(16), nullable=True),
    Column("created_at", _TS, nullable=False),
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
# batch jobs (invitation lists, advisor assignment); filled by the jobs feature
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
    # --- jobs feature (migration 0002; logic in matcher/batch/runner.py): which process runs the job, its last sign of life
    Column("owner", String(64), nullable=True),
    Column("heartbeat_at", _TS, nullable=True),
    Column("stage", String(100), nullable=True),                    # German label of the current step
)
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
Index("ix_feedback_rec_entity", feedback.c.recommendation_id, feedback.c.entity_id)


# ----------------------------------------------------------------------------- values
@dataclass(frozen=True)
class ApiKey:
    """A stored API key (never the key itself)."""

    id: str
    role: str
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    def allows(self, role: str) -> bool:
        """Whether this key may act as ``role`` (admin ⊃ editor ⊃ reader)."""
        return self.revoked_at is None and ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class ImportReport:
    """What a bulk write changed."""

    created: int
    updated: int
    catalog_version: int

    @property
    def imported(self) -> int:
        return self.created + self.updated


def entity_text_keys(entity: Entity) -> set[str]:
    """Cache keys of the texts :meth:`Matcher.fit` encodes for ``entity`` (role ``passage``)."""
    return {CachedEmbedder.key(t, "passage") for t in [profile_text(entity), *passages(entity)]}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite keeps no zone; we only ever write UTC


def _fold(value: str | None) -> str | None:
    return " ".join(value.casefold().split()) if value else None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_NO_KEY_HASH = _hash_key(secrets.token_urlsafe(32))   # compared against when no key has the presented id


def _first_line(exc: sa_exc.DBAPIError) -> str:
    """The driver's message without SQL or parameters (they may hold personal data)."""
    lines = str(exc.orig if exc.orig is not None else type(exc).__name__).splitlines()
    return lines[0][:300] if lines else type(exc).__name__


# SQLite result codes (low byte of sqlite_errorcode) and PostgreSQL SQLSTATEs that name a cause
_SQLITE_REASONS = {13: "disk_full", 8: "read_only"}                 # SQLITE_FULL, SQLITE_READONLY
_SQLSTATE_REASONS = {"53100": "disk_full", "25006": "read_only"}    # disk_full, read_only_sql_transaction
_UNAVAILABLE = {
    "disk_full": "Der Datenbank fehlt Speicherplatz (Datenträger voll); nichts wurde gespeichert. Bitte Platz "
                 "schaffen lassen und erneut versuchen",
    "read_only": "Die Datenbank ist schreibgeschützt; nichts wurde gespeichert. Bitte die Schreibrechte der "
                 "Datenbank prüfen lassen",
    "unavailable": "Die Datenbank ist gerade nicht erreichbar; bitte später erneut versuchen",
}


def _unavailable(exc: sa_exc.DBAPIError) -> StoreError:
    """The database cannot do what was asked: say why when the driver tells (disk full, read-only)."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    reason = (_SQLITE_REASONS.get(code & 0xFF, "unavailable") if isinstance(code, int)
              else _SQLSTATE_REASONS.get(getattr(orig, "sqlstate", None) or "", "unavailable"))
    return StoreError(_UNAVAILABLE[reason], [{"reason": reason, "driver": _first_line(exc)}])


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Database trouble becomes :class:`StoreError` (503), constraint clashes :class:`ConflictError`."""
    try:
        yield
    except sa_exc.DataError as exc:  # e.g. PostgreSQL refuses NUL characters in text
        raise ValidationError("Ein Wert kann so nicht gespeichert werden (Steuerzeichen wie \\u0000?); nichts wurde "
                              "gespeichert", [{"driver": _first_line(exc)}]) from exc
    except sa_exc.IntegrityError as exc:
        raise ConflictError("Die Änderung widerspricht gespeicherten Daten; nichts wurde gespeichert",
                            [{"driver": _first_line(exc)}]) from exc
    except sa_exc.ProgrammingError as exc:  # a table missing: the schema was dropped or never migrated
        raise StoreError("Das Datenbankschema fehlt oder ist veraltet: bitte `matcher db upgrade` ausführen",
                         [{"driver": _first_line(exc)}]) from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise _unavailable(exc) from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreError("Die Verbindung zur Datenbank ist abgebrochen; bitte erneut versuchen") from exc
        raise


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if not parsed.database or parsed.database == ":memory:":
        raise StoreError("Die Datenbank braucht eine Datei (sqlite:///pfad/datei.db), keine In-Memory-Datenbank")
    database = parsed.database
    if str(parsed.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        database = urlsplit(database).path          # sqlite:///file:/srv/matcher.db?mode=ro&uri=true
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see _on_begin)
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")     # a committed write survives power loss, not just a crash
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # writers take the write lock up front: no lock upgrade can fail half-way through a transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("matcher_write") else "BEGIN")

    return engine


# ----------------------------------------------------------------------------- vector cache
class StoreVectorCache:
    """The embedder cache protocol over the ``embeddings`` table."""

    def __init__(self, store: Store):
        self.store = store

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        hashes = list(hashes)
        with self.store._read() as conn:
            for chunk in _chunks(hashes):
                q = select(embeddings.c.text_hash, embeddings.c.vector).where(
                    embeddings.c.model_id == model_id, embeddings.c.text_hash.in_(chunk))
                for h, blob in conn.execute(q):
                    out[h] = np.frombuffer(bytes(blob), dtype="<f4")
        return out

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        if not items:
            return
        rows = [{"model_id": model_id, "text_hash": h, "dim": int(v.shape[0]),
                 "vector": np.asarray(v, dtype="<f4").tobytes()} for h, v in items.items()]
        with self.store._write() as conn:
            for chunk in _chunks(rows):
                conn.execute(self.store._insert_ignore(embeddings), list(chunk))

    def count(self, model_id: str | None = None) -> int:
        with self.store._read() as conn:
            q = select(func.count()).select_from(embeddings)
            if model_id:
                q = q.where(embeddings.c.model_id == model_id)
            return int(conn.scalar(q))


# ----------------------------------------------------------------------------- store
class Store:
    """All persistent state of the service, behind one SQLAlchemy engine.

    Example:
        >>> store = Store("sqlite:///var/matcher.db")
        >>> store.upgrade()                      # what ``matcher db upgrade`` does
        >>> store.upsert_entities(load_catalog("fixtures/catalog.jsonl"))
        >>> version, catalog = store.snapshot()
    """

    def __init__(self, url: str | None = None):
        self.url = url or database_url()
        try:
            self.engine = _make_engine(self.url)
        except sa_exc.ArgumentError as exc:
            # sqlalchemy's reason is English and may quote the URL with its password: not repeated here
            raise StoreError("Ungültige Datenbank-URL: erwartet z. B. sqlite:///pfad/matcher.db oder "
                             "postgresql+psycopg://nutzer@host/datenbank") from None
        except ModuleNotFoundError as exc:
            raise StoreError(f"Datenbanktreiber fehlt für {make_url(self.url).drivername}: {exc.name}") from None
        self.vectors = StoreVectorCache(self)

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    @property
    def location(self) -> str:
        """The database URL as shown to people (without a password)."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- transactions
    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with _translated_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        with _translated_errors(), self.engine.connect() as conn:
            conn.execution_options(matcher_write=True)
            with conn.begin():
                yield conn

    def _insert_ignore(self, table: Table) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).on_conflict_do_nothing()
        raise StoreError(f"Datenbank {quoted(self.dialect)} wird nicht unterstützt (SQLite oder PostgreSQL)")

    @staticmethod
    def _bump_version(conn: Connection) -> int:
        conn.execute(update(catalog_version).where(catalog_version.c.id == 1)
                     .values(version=catalog_version.c.version + 1, updated_at=_now()))
        return int(conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1)))

    # -- schema
    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "head") -> str | None:
        """Migrate the schema to ``revision`` (default: the newest); return the revision reached."""
        from alembic import command

        cfg = self._alembic_config()
        with _translated_errors(), self.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        return self.schema_revision()

    def schema_revision(self) -> str | None:
        """The revision the database is at (``None``: never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self._read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def check_schema(self) -> None:
        """Raise :class:`StoreError` unless the database is migrated to the newest revision."""
        current, head = self.schema_revision(), self.head_revision()
        if current != head:
            state = "nicht eingerichtet" if current is None else f"auf Stand {current}, erwartet {head}"
            raise StoreError(f"Die Datenbank ist {state}: bitte `matcher db upgrade` ausführen",
                             [{"current": current, "head": head}])

    def ping(self) -> int:
        """The catalog version; raises :class:`StoreError` when the database cannot be reached."""
        return self.catalog_version()

    # -- catalog reads
    def catalog_version(self) -> int:
        """The version of the catalog: bumped by every catalog write (cheap: one row)."""
        with _translated_errors(), self.engine.connect() as conn:
            value = conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1))
        if value is None:
            raise StoreError("Die Datenbank ist nicht eingerichtet: bitte `matcher db upgrade` ausführen")
        return int(value)

    def snapshot(self) -> tuple[int, list[Entity]]:
        """The whole catalog and its version, ordered by id.

        The version is read first: the entities are at least that new, so a
        later version check never misses a write.
        """
        with self._read() as conn:
            version = int(conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1)))
            records = conn.execute(select(entities.c.record).order_by(entities.c.id)).scalars().all()
        return version, [parse_entity(r) for r in records]

    def count_entities(self, kind: str | None = None) -> int:
        with self._read() as conn:
            q = select(func.count()).select_from(entities)
            if kind:
                q = q.where(entities.c.kind == kind)
            return int(conn.scalar(q))

    def get_entity(self, entity_id: str) -> Entity:
        """One entity (contact included). Raises :class:`UnknownEntityError`."""
        with self._read() as conn:
            record = conn.scalar(select(entities.c.record).where(entities.c.id == entity_id))
        if record is None:
            raise UnknownEntityError(f"Unbekannte id {quoted(entity_id)}: kein solcher Eintrag im Katalog",
                                     [{"field": "id", "value": entity_id}])
        return parse_entity(record)

    def list_entities(self, kind: str | None = None, city: str | None = None, topic: str | None = None,
                      limit: int = 50, offset: int = 0) -> tuple[list[Entity], int]:
        """A page of entities ordered by id, and how many match the filters in total.

        ``city`` and ``topic`` match whole values, ignoring case.
        """
        cond = []
        if kind:
            cond.append(entities.c.kind == kind)
        if city:
            cond.append(entities.c.city_key == _fold(city))
        if topic:
            cond.append(exists().where(entity_topics.c.entity_id == entities.c.id,
                                       entity_topics.c.topic_key == _fold(topic)))
        where = and_(*cond) if cond else None
        page = select(entities.c.record).order_by(entities.c.id).limit(limit).offset(offset)
        total = select(func.count()).select_from(entities)
        if where is not None:
            page, total = page.where(where), total.where(where)
        with self._read() as conn:
            records = conn.execute(page).scalars().all()
            n = int(conn.scalar(total))
        return [parse_entity(r) for r in records], n

    # -- catalog writes
    def create_entity(self, entity: Entity) -> int:
        """Add a new entity; return the new catalog version. Raises :class:`ConflictError` if the id exists."""
        with self._write() as conn:
            if conn.scalar(select(entities.c.id).where(entities.c.id == entity.id)) is not None:
                raise ConflictError(
                    f"Es gibt schon einen Eintrag mit der id {quoted(entity.id)}; "
                    f"zum Ändern PUT /v1/entities/{entity.id} "
                    "verwenden oder eine andere id wählen", [{"field": "id", "value": entity.id}])
            self._insert_entities(conn, [entity], created={})
            return self._bump_version(conn)

    def replace_entity(self, entity: Entity) -> int:
        """Replace a stored entity as a whole; return the new catalog version.

        Raises :class:`UnknownEntityError` if there is no entity with that id.
        """
        with self._write() as conn:
            created = self._existing(conn, [entity.id])
            if entity.id not in created:
                raise UnknownEntityError(f"Unbekannte id {quoted(entity.id)}: zum Anlegen POST /v1/entities verwenden",
                                         [{"field": "id", "value": entity.id}])
            self._delete_rows(conn, [entity.id])
            self._insert_entities(conn, [entity], created=created)
            return self._bump_version(conn)

    def upsert_entities(self, batch: Iterable[Entity]) -> ImportReport:
        """Create or replace many entities in one transaction (all or nothing)."""
        batch = list(batch)
        ids = [e.id for e in batch]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:20]
            raise ValidationError("Doppelte ids in der Lieferung; nichts wurde gespeichert",
                                  [{"field": "id", "value": d} for d in dupes])
        with self._write() as conn:
            created: dict[str, dt.datetime] = {}
            for chunk in _chunks(ids):
                created.update(self._existing(conn, chunk))
                self._delete_rows(conn, chunk)
            self._insert_entities(conn, batch, created=created)
            version = self._bump_version(conn) if batch else int(
                conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1)))
        return ImportReport(created=len(batch) - len(created), updated=len(created), catalog_version=version)

    def delete_entity(self, entity_id: str, erase: bool = False) -> dict[str, Any]:
        """Delete an entity and the cached vectors only it used; with ``erase`` also its
        feedback, and replace its id in the audit log by an anonymous token (GDPR art. 17).

        Returns counts of what was removed. Raises :class:`UnknownEntityError`.
        """
        with self._write() as conn:
            if not self._existing(conn, [entity_id]):
                raise UnknownEntityError(f"Unbekannte id {quoted(entity_id)}: kein solcher Eintrag im Katalog",
                                         [{"field": "id", "value": entity_id}])
            self._delete_rows(conn, [entity_id])
            vectors = self._delete_own_vectors(conn, entity_id)
            report: dict[str, Any] = {"id": entity_id, "erased": erase, "vectors": vectors}
            if erase:
                report["feedback"] = conn.execute(delete(feedback).where(feedback.c.entity_id == entity_id)).rowcount
                report["audit_entries"] = self._pseudonymise_audit(conn, entity_id)
                # jobs feature: the invitation history names the entity too
                report["invitations"] = conn.execute(
                    delete(invitations).where(invitations.c.entity_id == entity_id)).rowcount
            report["catalog_version"] = self._bump_version(conn)
        return report

    @staticmethod
    def _existing(conn: Connection, ids: Sequence[str]) -> dict[str, dt.datetime]:
        rows = conn.execute(select(entities.c.id, entities.c.created_at).where(entities.c.id.in_(ids)))
        return {i: _utc(c) for i, c in rows}

    @staticmethod
    def _delete_rows(conn: Connection, ids: Sequence[str]) -> None:
        conn.execute(delete(entity_topics).where(entity_topics.c.entity_id.in_(ids)))
        conn.execute(delete(entities).where(entities.c.id.in_(ids)))

    def _insert_entities(self, conn: Connection, batch: Sequence[Entity], created: dict[str, dt.datetime]) -> None:
        if not batch:
            return
        now = _now()
        rows, topics, texts = [], [], []
        for e in batch:
            rows.append({
                "id": e.id, "kind": e.kind, "name": e.name, "city": e.city, "city_key": _fold(e.city),
                "org_type": getattr(e, "org_type", None), "record": e.model_dump(mode="json", exclude_none=True),
                "created_at": created.get(e.id, now), "updated_at": now,
            })
            topics.extend({"entity_id": e.id, "topic_key": t} for t in dict.fromkeys(_fold(t)[:200] for t in e.topics))
            texts.extend({"entity_id": e.id, "text_hash": h} for h in entity_text_keys(e))
        for chunk in _chunks(rows):
            conn.execute(insert(entities), list(chunk))
        for chunk in _chunks(topics, 2000):
            conn.execute(insert(entity_topics), list(chunk))
        for chunk in _chunks(texts, 2000):
            conn.execute(self._insert_ignore(entity_texts), list(chunk))

    @staticmethod
    def _delete_own_vectors(conn: Connection, entity_id: str) -> int:
        own = set(conn.execute(select(entity_texts.c.text_hash).where(entity_texts.c.entity_id == entity_id)).scalars())
        shared = set()
        for chunk in _chunks(sorted(own)):
            shared.update(conn.execute(select(entity_texts.c.text_hash).where(
                entity_texts.c.text_hash.in_(chunk), entity_texts.c.entity_id != entity_id)).scalars())
        removed = 0
        for chunk in _chunks(sorted(own - shared)):
            removed += conn.execute(delete(embeddings).where(embeddings.c.text_hash.in_(chunk))).rowcount
        conn.execute(delete(entity_texts).where(entity_texts.c.entity_id == entity_id))
        return removed

    @staticmethod
    def _pseudonymise_audit(conn: Connection, entity_id: str) -> int:
        token = ERASED_PREFIX + secrets.token_hex(4)   # random: cannot be traced back to the id
        rows = conn.execute(select(audit_log.c.id, audit_log.c.asker_id, audit_log.c.query, audit_log.c.shown).where(
            or_(audit_log.c.asker_id == entity_id, cast(audit_log.c.shown, Text).like(f'%"{entity_id}"%'),
                cast(audit_log.c.query, Text).like(f'%"{entity_id}"%')))).all()
        changed = 0
        for row_id, asker, query, shown in rows:
            new_shown = [token if s == entity_id else s for s in shown]
            new_query = {k: (token if v == entity_id else v) for k, v in (query or {}).items()}
            if new_shown == shown and new_query == query and asker != entity_id:
                continue  # the LIKE pattern ('_' is a wildcard) matched another id
            conn.execute(update(audit_log).where(audit_log.c.id == row_id).values(
                shown=new_shown, query=new_query, asker_id=token if asker == entity_id else asker))
            changed += 1
        return changed

    # -- audit and feedback
    def record_recommendation(self, *, task: str, query: dict[str, Any], shown: Sequence[str], model_id: str,
                              catalog_version: int, role: str, key_id: str | None = None,
                              asker_id: str | None = None, recommendation_id: str | None = None) -> str:
        """Write one audit entry for a recommendation served; return its id (for feedback)."""
        rec_id = recommendation_id or f"rec_{uuid.uuid4().hex}"
        with self._write() as conn:
            conn.execute(insert(audit_log).values(
                recommendation_id=rec_id, created_at=_now(), key_id=key_id, role=role, task=task,
                asker_id=asker_id, query=query, shown=list(shown), model_id=model_id,
                catalog_version=catalog_version))
        return rec_id

    def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit entries (for staff and tests)."""
        with self._read() as conn:
            rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).mappings().all()
        return [{**r, "created_at": _utc(r["created_at"])} for r in rows]

    def add_feedback(self, recommendation_id: str, entity_id: str, outcome: str, key_id: str | None = None) -> int:
        """Record what became of one recommended entity; return the feedback id.

        Raises :class:`UnknownEntityError` for an unknown recommendation and
        :class:`ValidationError` when the entity was not part of it.
        """
        if outcome not in OUTCOMES:
            raise ValidationError(f"Unbekanntes Ergebnis {quoted(outcome)}; erlaubt: {alternatives(OUTCOMES)}",
                                  [{"field": "outcome", "value": outcome}])
        with self._write() as conn:
            shown = conn.scalar(select(audit_log.c.shown).where(audit_log.c.recommendation_id == recommendation_id))
            if shown is None:
                raise UnknownEntityError(f"Unbekannte Empfehlung {quoted(recommendation_id)}",
                                         [{"field": "recommendation_id", "value": recommendation_id}])
            if entity_id not in shown:
                raise ValidationError(f"{quoted(entity_id)} war nicht Teil der Empfehlung {quoted(recommendation_id)}",
                                      [{"field": "entity_id", "value": entity_id}])
            result = conn.execute(insert(feedback).values(recommendation_id=recommendation_id, entity_id=entity_id,
                                                          outcome=outcome, key_id=key_id, created_at=_now()))
            return int(result.inserted_primary_key[0])

    def contacted_pairs(self) -> set[tuple[str, str]]:
        """(asker, entity) pairs with "contacted" feedback: they know each other already."""
        q = (select(audit_log.c.asker_id, feedback.c.entity_id)
             .join(audit_log, audit_log.c.recommendation_id == feedback.c.recommendation_id)
             .where(feedback.c.outcome == "contacted", audit_log.c.asker_id.is_not(None)).distinct())
        with self._read() as conn:
            return {(a, b) for a, b in conn.execute(q)}

    def feedback_for(self, entity_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            return [dict(r) for r in conn.execute(select(feedback).where(feedback.c.entity_id == entity_id)).mappings()]

    # -- API keys
    def create_key(self, role: str, label: str | None = None) -> tuple[ApiKey, str]:
        """Create an API key; return it and the secret key (shown once, stored only as a hash)."""
        if role not in ROLES:
            raise ValidationError(f"Unbekannte Rolle {quoted(role)}; erlaubt: {alternatives(ROLES)}",
                                  [{"field": "role"}])
        key_id = secrets.token_hex(4)
        secret = f"mk_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(id=key_id, role=role, label=label, created_at=_now())
        with self._write() as conn:
            conn.execute(insert(api_keys).values(id=key.id, key_hash=_hash_key(secret), role=role, label=label,
                                                 created_at=key.created_at))
        return key, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """The key a caller presented, or ``None`` if it is unknown or revoked (constant-time compare)."""
        parts = secret.split("_", 2)
        if len(parts) != 3 or parts[0] != "mk" or not parts[1]:
            return None
        with self._read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == parts[1][:16])).mappings().first()
        # hash and compare on every path (an unknown id against a dummy): the time taken does not tell
        # a guessed id that exists from one that does not
        matches = hmac.compare_digest(row["key_hash"] if row is not None else _NO_KEY_HASH, _hash_key(secret))
        if row is None or not matches or row["revoked_at"] is not None:
            return None
        return ApiKey(id=row["id"], role=row["role"], label=row["label"], created_at=_utc(row["created_at"]))

    def list_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
        return [ApiKey(id=r["id"], role=r["role"], label=r["label"], created_at=_utc(r["created_at"]),
                       revoked_at=_utc(r["revoked_at"])) for r in rows]

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key at once. Raises :class:`UnknownEntityError` for an unknown key id."""
        with self._write() as conn:
            n = conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                             .values(revoked_at=_now())).rowcount
            if n == 0 and conn.scalar(select(api_keys.c.id).where(api_keys.c.id == key_id)) is None:
                raise UnknownEntityError(f"Unbekannter Schlüssel {quoted(key_id)} (siehe `matcher keys list`)",
                                         [{"field": "key_id", "value": key_id}])
