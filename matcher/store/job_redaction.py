"""Redacting an erased entity from stored job parameters, results and errors (GDPR art. 17).

A finished job keeps what it computed: invitation lists and assignments name
entities by id and name, carry their records (description, topics, city),
explanations quoting their texts, and German messages such as
"Kapazität von Name (id) um 1 erhöhen". Erasure rewrites every stored job
that mentions the entity, so an old job still loads and exports, and shows
"gelöschter Eintrag" where the entity was:

* a record of the entity (any JSON object whose ``id`` is the entity's: the
  entity itself, an invitee, an alternate, the event of a list) keeps only
  fields that say nothing about who it was (rank, score, kind, …), its ``id``
  becomes a random token and its ``name`` :data:`ERASED_NAME`;
* an object holding such a record (an assignment whose advisor it was) loses
  its ``explanation``, which quotes the entity's texts;
* every other string has the entity's id replaced by the token and its names
  and contact data (the catalog's and those the job's own records carry, which
  may be older) by :data:`ERASED_NAME`; object keys too (the advisors' load).

The token is random and new for each job, so two redacted jobs cannot be linked
through it, while one job stays consistent (its load table still adds up).
Everything here is pure except :func:`redact_vanished`, which asks the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from matcher.store.audit import erased_token
from matcher.store.db import chunks
from matcher.store.tables import entities

if TYPE_CHECKING:
    from matcher.store import Store

__all__ = ["ERASED_NAME", "JobRedactor", "catalog_record", "entity_strings", "redact_vanished"]

ERASED_NAME = "gelöschter Eintrag"
# fields of an entity record, invitee or alternate that say nothing about who it was
KEPT_FIELDS = frozenset({"kind", "rank", "score", "relevance_rank", "group", "free", "date", "recent_invitations",
                         "exposure_penalty", "redundancy", "choice_rank"})
# contact fields whose values are scrubbed from free text (the website and address of a person too)
_CONTACT_FIELDS = ("person", "email", "phone", "website", "address")
_ID_CHARS = r"A-Za-z0-9_\-"


def entity_strings(record: Mapping[str, Any] | None) -> set[str]:
    """The strings that identify an entity in free text: its name and its contact data."""
    if not record:
        return set()
    found = {record.get("name")}
    contact = record.get("contact") or {}
    if isinstance(contact, Mapping):
        found.update(contact.get(f) for f in _CONTACT_FIELDS)
    return {s.strip() for s in found if isinstance(s, str) and len(s.strip()) >= 3}


def _is_record(value: Any, entity_id: str) -> bool:
    return isinstance(value, Mapping) and value.get("id") == entity_id


def _objects(value: Any, keep: Callable[[Mapping[str, Any]], bool]) -> Iterable[Mapping[str, Any]]:
    """Every JSON object in ``value`` (at any depth) for which ``keep`` is true."""
    if isinstance(value, Mapping):
        if keep(value):
            yield value
        for v in value.values():
            yield from _objects(v, keep)
    elif isinstance(value, list):
        for v in value:
            yield from _objects(v, keep)


def _records(value: Any, entity_id: str) -> Iterable[Mapping[str, Any]]:
    """Every JSON object in ``value`` whose ``id`` is ``entity_id``."""
    return _objects(value, lambda o: o.get("id") == entity_id)


def _named(value: Any) -> Iterable[Mapping[str, Any]]:
    """Every object in ``value`` that names an entity (an ``id`` with a ``name``: records, invitees,
    alternates, the event of a list; a request has no name)."""
    return _objects(value, lambda o: isinstance(o.get("id"), str) and "name" in o)


class JobRedactor:
    """Rewrites one job's stored JSON so that ``entity_id`` and ``strings`` no longer occur in it.

    Args:
        entity_id: the erased entity's id.
        strings: its name and contact data as the catalog held them (see :func:`entity_strings`).

    Example:
        >>> redactor = JobRedactor("adv-7", {"Erika Muster", "erika@example.org"})
        >>> redactor.job({"result": {"invitees": [{"id": "adv-7", "name": "Erika Muster", "rank": 1}]}})["result"]
        {'invitees': [{'rank': 1, 'id': 'gelöscht-…', 'name': 'gelöschter Eintrag'}]}
    """

    def __init__(self, entity_id: str, strings: Iterable[str] = ()):
        self.entity_id = entity_id
        self.strings = set(strings)

    def job(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """``stored`` (a job's ``params``, ``result`` and ``error``) redacted with one new token."""
        strings = set(self.strings)
        for record in _records(stored, self.entity_id):   # the names the job itself recorded (maybe older ones)
            strings |= entity_strings(record)
        # longest first: a name that contains another is replaced whole
        names = sorted(strings, key=len, reverse=True)
        # whole words only: a short name must not eat into other words ("Eva" in "Evaluation")
        pattern = [re.compile(rf"(?<!\w){re.escape(s)}(?!\w)", re.IGNORECASE) for s in names]
        id_pattern = re.compile(rf"(?<![{_ID_CHARS}.:]){re.escape(self.entity_id)}(?![{_ID_CHARS}]|[.:][{_ID_CHARS}])")
        token = erased_token()

        def text(s: str) -> str:
            s = id_pattern.sub(token, s)
            for p in pattern:
                s = p.sub(ERASED_NAME, s)
            return s

        def walk(value: Any) -> Any:
            if isinstance(value, Mapping):
                if value.get("id") == self.entity_id:
                    out = {k: walk(v) for k, v in value.items() if k in KEPT_FIELDS}
                    if isinstance(value.get("entity"), Mapping):
                        out["entity"] = walk(value["entity"])
                    out["id"] = token
                    if "name" in value:
                        out["name"] = ERASED_NAME
                    return out
                holds = any(_is_record(v, self.entity_id) for v in value.values())
                return {text(k) if isinstance(k, str) else k: (None if holds and k == "explanation" else walk(v))
                        for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            if isinstance(value, str):
                return text(value)
            return value

        return {k: walk(v) for k, v in stored.items()}


def catalog_record(conn: Connection, entity_id: str) -> dict[str, Any] | None:
    """The stored record of ``entity_id`` (contact included), read in the caller's transaction."""
    return conn.scalar(select(entities.c.record).where(entities.c.id == entity_id))


def redact_vanished(store: Store, version: int, result: dict[str, Any]) -> dict[str, Any]:
    """A job result computed on catalog ``version``, with every entity that has left the catalog
    since (deleted or erased) redacted as by erasure. Unchanged when the catalog has not moved.

    A job that started on a matcher not yet refitted after an erasure would otherwise store the
    erased entity again; erasure itself stops the jobs that were running when it happened.
    """
    if store.catalog_version() == version:
        return result
    ids = sorted({r["id"] for r in _named(result)})
    if not ids:
        return result
    present: set[str] = set()
    with store.db.read() as conn:
        for chunk in chunks(ids):
            present.update(store.catalog.existing(conn, chunk))
    for entity_id in ids:
        if entity_id not in present:
            result = JobRedactor(entity_id).job({"result": result})["result"]
    return result
