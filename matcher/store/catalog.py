"""The catalog in the store: entities, their topics and texts, and the catalog version.

Every catalog write is one transaction and bumps the single ``catalog_version``
row in it, so a reader that sees a version also sees every write up to it. Each
entity records which cached vectors are its own (``entity_texts``), so deleting
it can delete them too (see :mod:`matcher.store.erasure`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, update

from matcher.domain.messages import quoted
from matcher.domain.schema import Advisor, Event, Municipality, Organisation, Programme, parse_entity
from matcher.engine.embedding import CachedEmbedder
from matcher.errors import ConflictError, StoreError, UnknownEntityError, ValidationError
from matcher.store.db import Database, chunks, now, translated_errors, utc
from matcher.store.tables import catalog_version, entities, entity_texts, entity_topics
from matcher.text.profile import passages, profile_text

__all__ = ["Catalog", "Entity", "ImportReport", "entity_text_keys", "fold"]

Entity = Advisor | Organisation | Event | Municipality | Programme


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


def fold(value: str | None) -> str | None:
    """A city or topic as the filter columns keep it: casefolded, whitespace collapsed."""
    return " ".join(value.casefold().split()) if value else None


def unknown_entity(entity_id: str) -> UnknownEntityError:
    return UnknownEntityError(f"Unbekannte id {quoted(entity_id)}: kein solcher Eintrag im Katalog",
                              [{"field": "id", "value": entity_id}])


class Catalog:
    """The entities (contact data included) and the catalog version, one transaction a call.

    The methods that take a ``conn`` run inside a transaction the caller opened
    (:meth:`Database.write`), so a write across repositories stays one transaction.
    """

    def __init__(self, db: Database):
        self.db = db

    # -- reads
    def version(self) -> int:
        """The version of the catalog: bumped by every catalog write (cheap: one row)."""
        with translated_errors(), self.db.engine.connect() as conn:
            value = conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1))
        if value is None:
            raise StoreError("Die Datenbank ist nicht eingerichtet: bitte `matcher db upgrade` ausführen")
        return int(value)

    def stamp(self) -> tuple[int, str]:
        """The catalog version and when it was set: together they name one state of one store's
        catalog (another store at the same version was written at another time)."""
        with translated_errors(), self.db.engine.connect() as conn:
            row = conn.execute(select(catalog_version.c.version, catalog_version.c.updated_at)
                               .where(catalog_version.c.id == 1)).first()
        if row is None:
            raise StoreError("Die Datenbank ist nicht eingerichtet: bitte `matcher db upgrade` ausführen")
        return int(row[0]), str(row[1])

    def snapshot(self) -> tuple[int, list[Entity]]:
        """The whole catalog and its version, ordered by id.

        The version is read first: the entities are at least that new, so a
        later version check never misses a write.
        """
        with self.db.read() as conn:
            version = int(conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1)))
            records = conn.execute(select(entities.c.record).order_by(entities.c.id)).scalars().all()
        return version, [parse_entity(r) for r in records]

    def count(self, kind: str | None = None) -> int:
        """How many entities (of ``kind``) the catalog holds."""
        with self.db.read() as conn:
            q = select(func.count()).select_from(entities)
            if kind:
                q = q.where(entities.c.kind == kind)
            return int(conn.scalar(q))

    def get(self, entity_id: str) -> Entity:
        """One entity (contact included). Raises :class:`UnknownEntityError`."""
        with self.db.read() as conn:
            record = conn.scalar(select(entities.c.record).where(entities.c.id == entity_id))
        if record is None:
            raise unknown_entity(entity_id)
        return parse_entity(record)

    def page(self, kind: str | None = None, city: str | None = None, topic: str | None = None,
             limit: int = 50, offset: int = 0) -> tuple[list[Entity], int]:
        """A page of entities ordered by id, and how many match the filters in total.

        ``city`` and ``topic`` match whole values, ignoring case.
        """
        cond = []
        if kind:
            cond.append(entities.c.kind == kind)
        if city:
            cond.append(entities.c.city_key == fold(city))
        if topic:
            cond.append(exists().where(entity_topics.c.entity_id == entities.c.id,
                                       entity_topics.c.topic_key == fold(topic)))
        where = and_(*cond) if cond else None
        page = select(entities.c.record).order_by(entities.c.id).limit(limit).offset(offset)
        total = select(func.count()).select_from(entities)
        if where is not None:
            page, total = page.where(where), total.where(where)
        with self.db.read() as conn:
            records = conn.execute(page).scalars().all()
            n = int(conn.scalar(total))
        return [parse_entity(r) for r in records], n

    def contacts(self, entity_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The current contact data of the given entities (those that have any).

        Job results are stored without it; staff get it added at read time.
        """
        ids = sorted(set(entity_ids))
        out: dict[str, dict[str, Any]] = {}
        with self.db.read() as conn:
            for chunk in chunks(ids):
                for eid, record in conn.execute(select(entities.c.id, entities.c.record)
                                                .where(entities.c.id.in_(chunk))):
                    if record.get("contact"):
                        out[eid] = record["contact"]
        return out

    # -- writes
    def create(self, entity: Entity) -> int:
        """Add a new entity; return the new catalog version. Raises :class:`ConflictError` if the id exists."""
        with self.db.write() as conn:
            if conn.scalar(select(entities.c.id).where(entities.c.id == entity.id)) is not None:
                raise ConflictError(
                    f"Es gibt schon einen Eintrag mit der id {quoted(entity.id)}; "
                    f"zum Ändern PUT /v1/entities/{entity.id} "
                    "verwenden oder eine andere id wählen", [{"field": "id", "value": entity.id}])
            self.insert(conn, [entity], created={})
            return self.bump_version(conn)

    def replace(self, entity: Entity) -> int:
        """Replace a stored entity as a whole; return the new catalog version.

        Raises :class:`UnknownEntityError` if there is no entity with that id.
        """
        with self.db.write() as conn:
            created = self.existing(conn, [entity.id])
            if entity.id not in created:
                raise UnknownEntityError(f"Unbekannte id {quoted(entity.id)}: zum Anlegen POST /v1/entities verwenden",
                                         [{"field": "id", "value": entity.id}])
            self.delete_rows(conn, [entity.id])
            self.insert(conn, [entity], created=created)
            return self.bump_version(conn)

    def upsert(self, batch: Iterable[Entity]) -> ImportReport:
        """Create or replace many entities in one transaction (all or nothing)."""
        batch = list(batch)
        ids = [e.id for e in batch]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:20]
            raise ValidationError("Doppelte ids in der Lieferung; nichts wurde gespeichert",
                                  [{"field": "id", "value": d} for d in dupes])
        with self.db.write() as conn:
            created: dict[str, dt.datetime] = {}
            for chunk in chunks(ids):
                created.update(self.existing(conn, chunk))
                self.delete_rows(conn, chunk)
            self.insert(conn, batch, created=created)
            version = self.bump_version(conn) if batch else int(
                conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1)))
        return ImportReport(created=len(batch) - len(created), updated=len(created), catalog_version=version)

    # -- parts of a transaction the caller holds
    @staticmethod
    def existing(conn: Connection, ids: Sequence[str]) -> dict[str, dt.datetime]:
        """The creation times of those of ``ids`` that are stored."""
        rows = conn.execute(select(entities.c.id, entities.c.created_at).where(entities.c.id.in_(ids)))
        return {i: utc(c) for i, c in rows}

    @staticmethod
    def delete_rows(conn: Connection, ids: Sequence[str]) -> None:
        """Delete the entities and their topics (their texts stay listed: see ``entity_texts``)."""
        conn.execute(delete(entity_topics).where(entity_topics.c.entity_id.in_(ids)))
        conn.execute(delete(entities).where(entities.c.id.in_(ids)))

    def insert(self, conn: Connection, batch: Sequence[Entity], created: dict[str, dt.datetime]) -> None:
        """Insert the entities, their topics and their texts' cache keys (keeping ``created`` times)."""
        if not batch:
            return
        at = now()
        rows, topics, texts = [], [], []
        for e in batch:
            rows.append({
                "id": e.id, "kind": e.kind, "name": e.name, "city": e.city, "city_key": fold(e.city),
                "org_type": getattr(e, "org_type", None), "record": e.model_dump(mode="json", exclude_none=True),
                "created_at": created.get(e.id, at), "updated_at": at,
            })
            topics.extend({"entity_id": e.id, "topic_key": t} for t in dict.fromkeys(fold(t)[:200] for t in e.topics))
            texts.extend({"entity_id": e.id, "text_hash": h} for h in entity_text_keys(e))
        for chunk in chunks(rows):
            conn.execute(insert(entities), list(chunk))
        for chunk in chunks(topics, 2000):
            conn.execute(insert(entity_topics), list(chunk))
        for chunk in chunks(texts, 2000):
            conn.execute(self.db.insert_ignore(entity_texts), list(chunk))

    @staticmethod
    def bump_version(conn: Connection) -> int:
        """Add one to the catalog version; return the new version. The last step of every catalog write."""
        conn.execute(update(catalog_version).where(catalog_version.c.id == 1)
                     .values(version=catalog_version.c.version + 1, updated_at=now()))
        return int(conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1)))
