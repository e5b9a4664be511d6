"""Deleting an entity, and erasing it (GDPR art. 17), across the store in one transaction.

An entity is named by the catalog, the vector cache (its texts' vectors), the
feedback, the audit log and the invitation history. Deleting it removes it
and the vectors only it used; erasing it also removes its feedback and its
invitations and replaces its id in the audit log by an anonymous token. Either
happens in one write transaction, all or nothing, and bumps the catalog version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matcher.store.catalog import unknown_entity

if TYPE_CHECKING:
    from matcher.store import Store

__all__ = ["delete_entity"]


def delete_entity(store: Store, entity_id: str, erase: bool = False) -> dict[str, Any]:
    """Delete an entity and the cached vectors only it used; with ``erase`` also its feedback and
    invitations, and replace its id in the audit log by an anonymous token.

    Returns:
        Counts of what was removed: ``{"id", "erased", "vectors", "catalog_version"}``, with
        ``erase`` also ``"feedback"``, ``"audit_entries"`` and ``"invitations"``.

    Raises:
        UnknownEntityError: no entity has that id (nothing is changed).
    """
    with store.db.write() as conn:
        if not store.catalog.existing(conn, [entity_id]):
            raise unknown_entity(entity_id)
        store.catalog.delete_rows(conn, [entity_id])
        vectors = store.vectors.delete_own(conn, entity_id)
        report: dict[str, Any] = {"id": entity_id, "erased": erase, "vectors": vectors}
        if erase:
            report["feedback"] = store.audit.delete_feedback(conn, entity_id)
            report["audit_entries"] = store.audit.pseudonymise(conn, entity_id)
            report["invitations"] = store.invitations.delete_entity(conn, entity_id)
        report["catalog_version"] = store.catalog.bump_version(conn)
    return report
