"""The vector cache in the store: one float32 vector per (model, text hash).

:class:`StoreVectorCache` implements the embedder cache protocol
(``get_many``/``put_many``, see :class:`~matcher.engine.embedding.CachedEmbedder`),
so a restart encodes only texts it has not seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, Table, delete, func, select

from matcher.store.db import Database, chunks
from matcher.store.tables import embeddings, entity_texts

__all__ = ["StoreVectorCache", "read_vectors"]


def read_vectors(db: Database, table: Table, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    """The float32 vectors of ``model_id`` among ``hashes`` in ``table`` (a table with ``model_id``,
    ``text_hash`` and ``vector`` columns: the catalog's embeddings, the requests' vectors); missing ones
    are left out."""
    out: dict[str, np.ndarray] = {}
    hashes = list(hashes)
    if not hashes:
        return out
    with db.read() as conn:
        for chunk in chunks(hashes):
            q = select(table.c.text_hash, table.c.vector).where(
                table.c.model_id == model_id, table.c.text_hash.in_(chunk))
            for h, blob in conn.execute(q):
                out[h] = np.frombuffer(bytes(blob), dtype="<f4")
    return out


class StoreVectorCache:
    """The embedder cache protocol over the ``embeddings`` table (one transaction a call)."""

    def __init__(self, db: Database):
        self.db = db

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``model_id`` among ``hashes`` (missing ones are left out)."""
        return read_vectors(self.db, embeddings, model_id, hashes)

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        """Store vectors; one already stored for the same model and hash is kept."""
        if not items:
            return
        rows = [{"model_id": model_id, "text_hash": h, "dim": int(v.shape[0]),
                 "vector": np.asarray(v, dtype="<f4").tobytes()} for h, v in items.items()]
        with self.db.write() as conn:
            for chunk in chunks(rows):
                conn.execute(self.db.insert_ignore(embeddings), list(chunk))

    def count(self, model_id: str | None = None) -> int:
        """How many vectors are stored (for ``model_id``)."""
        with self.db.read() as conn:
            q = select(func.count()).select_from(embeddings)
            if model_id:
                q = q.where(embeddings.c.model_id == model_id)
            return int(conn.scalar(q))

    @staticmethod
    def delete_own(conn: Connection, entity_id: str) -> int:
        """In the caller's transaction: delete the vectors only ``entity_id``'s texts used (of every
        model) and its ``entity_texts`` rows; return how many vectors went."""
        own = set(conn.execute(select(entity_texts.c.text_hash).where(entity_texts.c.entity_id == entity_id)).scalars())
        shared = set()
        for chunk in chunks(sorted(own)):
            shared.update(conn.execute(select(entity_texts.c.text_hash).where(
                entity_texts.c.text_hash.in_(chunk), entity_texts.c.entity_id != entity_id)).scalars())
        removed = 0
        for chunk in chunks(sorted(own - shared)):
            removed += conn.execute(delete(embeddings).where(embeddings.c.text_hash.in_(chunk))).rowcount
        conn.execute(delete(entity_texts).where(entity_texts.c.entity_id == entity_id))
        return removed
