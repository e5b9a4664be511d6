"""„Passt nicht“ of an asker, kept with the vector of the need it was said for.

A decline names who asked (the asking entity, else the API key, else the anonymous browser tab:
``entity:<id>``, ``key:<id>``, ``tab:<hash>``), the task, the entity declined and the need's vector
(float16: a stored number derived from an embedding is never kept to the last digit). The engine lowers
that entity for the same asker's later requests of the same task whose need is similar
(:mod:`matcher.engine.demotion`). "Passt" or "kontaktiert" for the same asker and entity later lifts it
again. Erasure deletes the declines of and by an erased entity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, delete, or_, select

from matcher.store.db import Database, now
from matcher.store.tables import declines

__all__ = ["Declines", "asker_of"]


def asker_of(asker_id: str | None, key_id: str | None, tab: str | None) -> str | None:
    """Who asked, as a decline records it: the asking entity, else the key, else the browser tab."""
    if asker_id:
        return f"entity:{asker_id}"
    if key_id:
        return f"key:{key_id}"
    if tab:
        return f"tab:{tab}"
    return None


class Declines:
    """The declines of askers (one transaction a call)."""

    def __init__(self, db: Database):
        self.db = db

    def add(self, *, asker: str, task: str, entity_id: str, recommendation_id: str, model_id: str,
            vector: np.ndarray) -> None:
        """Record „passt nicht“ (once per recommendation and entity)."""
        with self.db.write() as conn:
            conn.execute(self.db.insert_ignore(declines).values(
                asker=asker, task=task, entity_id=entity_id, recommendation_id=recommendation_id,
                model_id=model_id, vector=np.asarray(vector, dtype="<f2").tobytes(), created_at=now()))

    def lift(self, *, asker: str, task: str, entity_id: str) -> int:
        """Forget the asker's declines of ``entity_id`` (it said „passt“ since); return how many went."""
        with self.db.write() as conn:
            return conn.execute(delete(declines).where(declines.c.asker == asker, declines.c.task == task,
                                                       declines.c.entity_id == entity_id)).rowcount

    def of(self, asker: str, task: str, model_id: str) -> list[tuple[str, np.ndarray]]:
        """The asker's declines for ``task`` as (entity id, need vector), oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(declines.c.entity_id, declines.c.vector).where(
                declines.c.asker == asker, declines.c.task == task, declines.c.model_id == model_id)
                .order_by(declines.c.id)).all()
        return [(e, np.frombuffer(v, dtype="<f2").astype(np.float32)) for e, v in rows]

    def count(self) -> int:
        with self.db.read() as conn:
            return len(conn.execute(select(declines.c.id)).all())

    @staticmethod
    def delete_entity(conn: Connection, entity_ids: Sequence[str]) -> int:
        """Delete the declines of and by the entities (erasure, in the caller's transaction)."""
        return conn.execute(delete(declines).where(or_(
            declines.c.entity_id.in_(list(entity_ids)),
            declines.c.asker.in_([f"entity:{e}" for e in entity_ids])))).rowcount
