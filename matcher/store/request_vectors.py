"""The vectors of request texts as the engine computed them when it served them, kept for training.

A recommendation served keeps its request (``audit_log.request``, text included) so that a ranker can learn
from the feedback on it; training reads the request against the catalog again, which needs the vector of its
text. Encoding it again costs what serving it cost (~35 ms a text with ``e5+use``), so the service stores the
vector it computed with the audit entry, in the same transaction (:meth:`AuditLog.record`), keyed like the
embedder's cache — the model id and the hash of role and text
(:meth:`~matcher.engine.embedding.CachedEmbedder.key`) — so that a request asked again shares one row and a
process with another model finds nothing and encodes (:class:`~matcher.live.StoreBackedEmbedder` reads these
rows before it encodes a request text).

A request text may hold personal data, and so may its vector. Both go after the retention period
(:meth:`RequestVectors.purge`, ``MATCHER_REQUEST_RETENTION_DAYS``: the texts of older audit entries and the
vectors no newer entry was served with), and on erasure: an entry whose text named the erased entity is
redacted (:meth:`AuditLog.pseudonymise`) and the vector of its former text deleted
(:meth:`RequestVectors.delete_texts`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import Connection, delete, func, null, select, update

from matcher.engine.embedding import CachedEmbedder
from matcher.store.db import Database, chunks, now
from matcher.store.tables import audit_log, request_vectors
from matcher.store.vectors import read_vectors

__all__ = ["RequestVectors", "request_key"]


def request_key(text: str) -> str:
    """The key of a request text's vector: the one the embedder's request cache looks up."""
    return CachedEmbedder.key(text, "query")


class RequestVectors:
    """Request vectors (one transaction a call, or the caller's)."""

    def __init__(self, db: Database):
        self.db = db

    def put(self, conn: Connection, model_id: str, text: str, vector: np.ndarray, at: dt.datetime) -> None:
        """In the caller's transaction: keep the vector of ``text`` served at ``at`` (a text served before
        keeps its row, with ``used_at`` moved on to ``at``)."""
        v = np.asarray(vector, dtype="<f4").ravel()
        conn.execute(self.db.upsert(request_vectors, ["model_id", "text_hash"], ["used_at"]).values(
            model_id=model_id, text_hash=request_key(text), dim=int(v.shape[0]), vector=v.tobytes(), used_at=at))

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``model_id`` among ``hashes`` (the embedder cache protocol's read; missing
        ones are left out)."""
        return read_vectors(self.db, request_vectors, model_id, hashes)

    def count(self, model_id: str | None = None) -> int:
        with self.db.read() as conn:
            q = select(func.count()).select_from(request_vectors)
            if model_id:
                q = q.where(request_vectors.c.model_id == model_id)
            return int(conn.scalar(q))

    def purge(self, older_than: dt.timedelta) -> dict[str, int]:
        """Forget request texts older than ``older_than``, in one transaction: the audit entries created before
        then lose their request (the summary without free text, what was shown and the feedback stay), and
        the vectors last served before then go. Returns ``{"requests": …, "vectors": …}`` (how many)."""
        cutoff = now() - older_than
        with self.db.write() as conn:
            requests = conn.execute(update(audit_log).where(audit_log.c.created_at < cutoff,
                                                            audit_log.c.request.is_not(None))
                                    .values(request=null())).rowcount   # SQL NULL, not JSON null
            vectors = conn.execute(delete(request_vectors).where(request_vectors.c.used_at < cutoff)).rowcount
        return {"requests": int(requests), "vectors": int(vectors)}

    @staticmethod
    def delete_texts(conn: Connection, texts: Iterable[str]) -> int:
        """In the caller's transaction: delete the vectors of ``texts`` (of every model); return how many went."""
        keys = sorted({request_key(t) for t in texts})
        removed = 0
        for chunk in chunks(keys):
            removed += conn.execute(delete(request_vectors).where(request_vectors.c.text_hash.in_(chunk))).rowcount
        return removed
