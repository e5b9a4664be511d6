"""Deleting an entity, and erasing it (GDPR art. 17), across the store in one transaction.

An entity is named by the catalog, the vector cache (its texts' vectors), the
feedback, the audit log (and the requests it keeps), the declines („passt nicht“),
the invitation history and stored batch jobs.
Deleting it removes it and the vectors only it used. Erasing it also removes
its feedback, its declines (of it and by it) and its invitations, replaces its id in
the audit log by an anonymous token (a new one for each entry) and its name and
contact data in stored request texts (and deletes the stored vectors of those
texts), redacts it from the parameters, results and errors of stored jobs
(:mod:`matcher.store.job_redaction`: an old job shows "gelöschter Eintrag"), and stops
the jobs that are queued or running, which were computing on a catalog that still held it. Either happens in one
write transaction, all or nothing, and bumps the catalog version (every
process refits its engine without the entity before its next answer).

SQLite overwrites what a transaction frees (``PRAGMA secure_delete``, set on
every connection); after an erasure the write-ahead log, which still holds
the old pages, is checkpointed into the database and truncated
(:meth:`~matcher.store.db.Database.checkpoint`). On PostgreSQL the old row
versions stay in the table files until VACUUM reuses their space, and in WAL
archives and backups until those expire: docs/operations.md ("Erasure") says
what an operator does there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matcher.store.catalog import unknown_entity
from matcher.store.job_redaction import JobRedactor, catalog_record, entity_strings

if TYPE_CHECKING:
    from matcher.store import Store

__all__ = ["STOPPED_BY_ERASURE", "delete_entity"]

STOPPED_BY_ERASURE = {
    "code": "job_interrupted",
    "message": "Der Auftrag wurde abgebrochen, weil während seiner Bearbeitung ein Eintrag endgültig gelöscht "
               "wurde (DSGVO Art. 17). Bitte den Auftrag neu starten.",
    "details": [{"reason": "erasure"}],
}


def delete_entity(store: Store, entity_id: str, erase: bool = False) -> dict[str, Any]:
    """Delete an entity and the cached vectors only it used; with ``erase`` also its feedback and
    invitations, replace its id in the audit log by anonymous tokens, redact it from stored jobs
    and stop the unfinished ones; then checkpoint SQLite's write-ahead log.

    Returns:
        Counts of what was removed: ``{"id", "erased", "vectors", "catalog_version"}``, with
        ``erase`` also ``"feedback"``, ``"audit_entries"``, ``"request_vectors"``, ``"declines"``,
        ``"invitations"``, ``"jobs_redacted"``,
        ``"jobs_stopped"`` and ``"checkpoint"`` (:meth:`~matcher.store.db.Database.checkpoint`).

    Raises:
        UnknownEntityError: no entity has that id (nothing is changed).
    """
    with store.db.write() as conn:
        if not store.catalog.existing(conn, [entity_id]):
            raise unknown_entity(entity_id)
        strings = entity_strings(catalog_record(conn, entity_id)) if erase else set()
        store.catalog.delete_rows(conn, [entity_id])
        vectors = store.vectors.delete_own(conn, entity_id)
        report: dict[str, Any] = {"id": entity_id, "erased": erase, "vectors": vectors}
        if erase:
            report["feedback"] = store.audit.delete_feedback(conn, entity_id)
            redacted: list[str] = []
            report["audit_entries"] = store.audit.pseudonymise(conn, entity_id, sorted(strings), redacted)
            # the vector of a request text that named it is as personal as the text
            report["request_vectors"] = store.request_vectors.delete_texts(conn, redacted)
            report["declines"] = store.declines.delete_entity(conn, [entity_id])
            report["invitations"] = store.invitations.delete_entity(conn, entity_id)
            # stop first: on PostgreSQL this waits for a job finishing right now, whose result the
            # redaction below then sees
            report["jobs_stopped"] = store.jobs.stop_active(conn, STOPPED_BY_ERASURE)
            report["jobs_redacted"] = store.jobs.rewrite_mentioning(conn, entity_id,
                                                                    JobRedactor(entity_id, strings).job)
        report["catalog_version"] = store.catalog.bump_version(conn)
    if erase:
        report["checkpoint"] = store.db.checkpoint()
    return report
