"""The invitations actually sent (``invitations`` table), read by invitation jobs for exposure control.

Staff record them after sending; each (event, entity) pair is stored once.
:meth:`InvitationHistory.history` gives ``(entity_id, event_id, date)`` tuples,
which :func:`matcher.batch.invitations.invitation_list` takes as its ``history``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from matcher.domain.invitations import INVITABLE_KINDS, InvitationRecord
from matcher.domain.messages import KIND_LABELS, quoted
from matcher.errors import ValidationError
from matcher.store.catalog import Catalog
from matcher.store.db import Database, chunks, now, utc
from matcher.store.tables import entities, invitations

__all__ = ["InvitationHistory"]


class InvitationHistory:
    """Record, read and page the invitation history (one transaction a call).

    Args:
        db: the database.
        catalog: the catalog (an invitation names an event and invitable entities of it).

    Example:
        >>> store.invitations.record("evt-101", ["org-101", "org-102"])["recorded"]
        ['org-101', 'org-102']
    """

    def __init__(self, db: Database, catalog: Catalog):
        self.db = db
        self.catalog = catalog

    def record(self, event_id: str, entity_ids: Sequence[str], date: dt.date | None = None,
               key_id: str | None = None, job_id: str | None = None) -> dict[str, Any]:
        """Record that the entities were invited to the event (each pair once); all or nothing.

        ``date`` is the date the invitation counts for in exposure control (default: the
        event's date, else today).

        Returns:
            ``{"event", "date", "recorded": [new ids], "already_recorded": [ids]}``.

        Raises:
            UnknownEntityError: no such event. ValidationError: not an event, duplicate, unknown
                or uninvitable entity ids (one detail each).
        """
        ids = list(entity_ids)
        if not ids:
            raise ValidationError("Bitte mindestens eine eingeladene Organisation angeben (entity_ids)",
                                  [{"field": "entity_ids"}])
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValidationError("Doppelte ids in entity_ids; nichts wurde gespeichert",
                                  [{"field": "entity_ids", "value": d} for d in dupes])
        event = self.catalog.get(event_id)
        if event.kind != "event":
            raise ValidationError(f"{quoted(event_id)} ist keine Veranstaltung "
                                  f"(Art: {KIND_LABELS.get(event.kind, event.kind)})",
                                  [{"field": "event", "value": event_id}])
        when = date or getattr(event, "date", None) or dt.date.today()
        with self.db.write() as conn:
            kinds: dict[str, str] = {}
            for chunk in chunks(ids):
                kinds.update(conn.execute(select(entities.c.id, entities.c.kind)
                                          .where(entities.c.id.in_(chunk))).all())
            problems = [{"field": "entity_ids", "value": i, "message": "nicht im Katalog"} for i in ids
                        if i not in kinds]
            problems += [{"field": "entity_ids", "value": i,
                          "message": f"kann nicht eingeladen werden (Art: {KIND_LABELS.get(kinds[i], kinds[i])})"}
                         for i in ids if i in kinds and kinds[i] not in INVITABLE_KINDS]
            if problems:
                raise ValidationError(f"{len(problems)} id(s) können nicht als eingeladen gespeichert werden; "
                                      "nichts wurde gespeichert", problems)
            already: set[str] = set()
            for chunk in chunks(ids):
                already.update(conn.execute(select(invitations.c.entity_id).where(
                    invitations.c.event_id == event_id, invitations.c.entity_id.in_(chunk))).scalars())
            new = [i for i in ids if i not in already]
            at = now()
            rows = [{"event_id": event_id, "entity_id": i, "date": when, "job_id": job_id, "key_id": key_id,
                     "created_at": at} for i in new]
            for chunk in chunks(rows):
                conn.execute(self.db.insert_ignore(invitations), list(chunk))
        return {"event": event_id, "date": when, "recorded": new, "already_recorded": [i for i in ids if i in already]}

    def history(self, since: dt.date | None = None) -> list[InvitationRecord]:
        """Invitations counting for ``since`` or later (all without ``since``), for exposure control."""
        q = select(invitations.c.entity_id, invitations.c.event_id, invitations.c.date)
        if since is not None:
            q = q.where(invitations.c.date >= since)
        with self.db.read() as conn:
            return [InvitationRecord(e, v, d) for e, v, d in conn.execute(q)]

    def page(self, event_id: str | None = None, entity_id: str | None = None, since: dt.date | None = None,
             limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """A page of recorded invitations (newest first) and how many match in total."""
        cond = []
        if event_id:
            cond.append(invitations.c.event_id == event_id)
        if entity_id:
            cond.append(invitations.c.entity_id == entity_id)
        if since:
            cond.append(invitations.c.date >= since)
        page = select(invitations).order_by(invitations.c.date.desc(), invitations.c.id.desc())
        total = select(func.count()).select_from(invitations)
        if cond:
            page, total = page.where(and_(*cond)), total.where(and_(*cond))
        with self.db.read() as conn:
            rows = conn.execute(page.limit(limit).offset(offset)).mappings().all()
            n = int(conn.scalar(total))
        return [{"event_id": r["event_id"], "entity_id": r["entity_id"], "date": r["date"], "job_id": r["job_id"],
                 "created": utc(r["created_at"])} for r in rows], n

    @staticmethod
    def delete_entity(conn: Connection, entity_id: str) -> int:
        """In the caller's transaction: delete the invitations of ``entity_id`` (erasure); return how many."""
        return conn.execute(delete(invitations).where(invitations.c.entity_id == entity_id)).rowcount
