"""The database under the store: engine, transactions, error translation, schema revision.

:class:`Database` opens one SQLAlchemy engine on SQLite (WAL, a file) or
PostgreSQL and hands out transactions: :meth:`Database.read` and
:meth:`Database.write`. Every repository of the store (catalog, vectors, audit,
keys, jobs, invitations) runs its SQL inside them, and a write that spans
several repositories (erasure) opens one :meth:`~Database.write` and passes its
connection to each. Inside both, database trouble is translated into the
library's errors, with German messages that never repeat SQL or parameters:

* :class:`~matcher.errors.StoreError` (503): unreachable, disk full, read-only,
  schema missing;
* :class:`~matcher.errors.ConflictError`: a constraint clash;
* :class:`~matcher.errors.ValidationError`: a value the database refuses.

The small helpers every repository uses (:func:`now`, :func:`utc`, :func:`chunks`)
live here too.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url

from matcher.domain.messages import quoted
from matcher.errors import ConflictError, StoreError, ValidationError
from matcher.settings import database_url

__all__ = ["CHUNK", "Database", "chunks", "now", "translated_errors", "utc"]

CHUNK = 500                                      # ids per IN (...) clause
BUSY_TIMEOUT_MS = 30000                          # how long SQLite waits for a lock before it gives up


def now() -> dt.datetime:
    """The current time in UTC (the only zone the store writes)."""
    return dt.datetime.now(dt.UTC)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp read back from the database, zone-aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite keeps no zone; we only ever write UTC


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size`` (bound parameters per statement stay within every driver's limit)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ----------------------------------------------------------------------------- errors
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
def translated_errors() -> Iterator[None]:
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


# ----------------------------------------------------------------------------- engine
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
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # what a transaction deletes or overwrites is overwritten with zeros, not just marked free:
        # erased data must not stay readable in free pages (docs/operations.md, "Erasure")
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # writers take the write lock up front: no lock upgrade can fail half-way through a transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("matcher_write") else "BEGIN")

    return engine


class Database:
    """One engine on the store's database, and the transactions every repository runs in.

    Args:
        url: a SQLAlchemy URL (``sqlite:///pfad/matcher.db`` or ``postgresql+psycopg://…``);
            default :func:`matcher.settings.database_url`.

    Raises:
        StoreError: an unreadable URL, a missing driver, an in-memory SQLite database.

    Example:
        >>> db = Database("sqlite:///var/matcher.db")
        >>> with db.write() as conn:          # one transaction across any number of statements
        ...     conn.execute(insert(feedback).values(...))
    """

    def __init__(self, url: str | None = None):
        self.url = url or database_url()
        try:
            self.engine = _make_engine(self.url)
        except sa_exc.ArgumentError:
            # sqlalchemy's reason is English and may quote the URL with its password: not repeated here
            raise StoreError("Ungültige Datenbank-URL: erwartet z. B. sqlite:///pfad/matcher.db oder "
                             "postgresql+psycopg://nutzer@host/datenbank") from None
        except ModuleNotFoundError as exc:
            raise StoreError(f"Datenbanktreiber fehlt für {make_url(self.url).drivername}: {exc.name}") from None

    @property
    def location(self) -> str:
        """The database URL as shown to people (without a password)."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    # -- transactions
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: every statement in the block sees one state of the database.

        Errors are translated (see the module). Nothing is written; the transaction
        ends with the block.
        """
        with translated_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on any exception.

        On SQLite it takes the write lock at its start (``BEGIN IMMEDIATE``), so it never
        fails half-way for want of a lock. Errors are translated (see the module).
        Pass the connection to repository methods that take one to make their
        writes part of this transaction.
        """
        with translated_errors(), self.engine.connect() as conn:
            conn.execution_options(matcher_write=True)
            with conn.begin():
                yield conn

    def checkpoint(self, attempts: int = 20, pause: float = 0.05) -> str:
        """Copy SQLite's write-ahead log into the database file and truncate it to zero bytes
        (``PRAGMA wal_checkpoint(TRUNCATE)``), so pages an erasure replaced are gone from the log.

        A reader still in a transaction on an older state blocks it; it is tried ``attempts``
        times, ``pause`` seconds apart, each attempt waiting for locks only briefly.

        Returns:
            ``"complete"``; ``"blocked"`` when readers kept it from finishing (SQLite checkpoints
            again on later commits and when the last connection closes); ``"not_applicable"`` on
            PostgreSQL, whose write-ahead log is the server's (docs/operations.md, "Erasure").
        """
        if self.dialect != "sqlite":
            return "not_applicable"
        with translated_errors():
            raw = self.engine.raw_connection()   # outside a transaction: a checkpoint cannot run inside one
            try:
                cur = raw.cursor()
                # a short lock wait per attempt: TRUNCATE otherwise waits up to the busy timeout for readers
                cur.execute(f"PRAGMA busy_timeout={max(1, int(pause * 1000))}")
                try:
                    for attempt in range(attempts):
                        busy, _log_frames, _copied = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                        if busy == 0:
                            return "complete"
                        if attempt + 1 < attempts:
                            time.sleep(pause)
                finally:
                    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                    cur.close()
            finally:
                raw.close()
        return "blocked"

    def _insert(self, table: Table) -> Any:
        """This dialect's ``INSERT`` into ``table`` (the one with ``ON CONFLICT``)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
        else:
            raise StoreError(f"Datenbank {quoted(self.dialect)} wird nicht unterstützt (SQLite oder PostgreSQL)")
        return dialect_insert(table)

    def insert_ignore(self, table: Table) -> Any:
        """An ``INSERT`` into ``table`` that skips rows whose key is already stored (this dialect's way)."""
        return self._insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, keys: Sequence[str], update: Sequence[str]) -> Any:
        """An ``INSERT`` into ``table`` that, for a row whose ``keys`` are already stored, sets its ``update``
        columns to the new values instead (this dialect's ``ON CONFLICT … DO UPDATE``)."""
        stmt = self._insert(table)
        return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})

    # -- schema
    def alembic_config(self) -> Any:
        """The alembic configuration of the store's migrations, pointed at this database."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "head") -> str | None:
        """Migrate the schema to ``revision`` (default: the newest); return the revision reached."""
        from alembic import command

        cfg = self.alembic_config()
        with translated_errors(), self.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        return self.schema_revision()

    def schema_revision(self) -> str | None:
        """The revision the database is at (``None``: never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision of the migrations."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def check_schema(self) -> None:
        """Raise :class:`StoreError` unless the database is migrated to the newest revision."""
        current, head = self.schema_revision(), self.head_revision()
        if current != head:
            state = "nicht eingerichtet" if current is None else f"auf Stand {current}, erwartet {head}"
            raise StoreError(f"Die Datenbank ist {state}: bitte `matcher db upgrade` ausführen",
                             [{"current": current, "head": head}])
