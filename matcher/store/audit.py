"""The audit log of recommendations served, and the feedback on them.

Each recommendation served is one audit entry (what was asked, as a summary
without free text, which entity ids were shown, and to whom: the API key, or
for an anonymous caller of the open demo an opaque id of its browser tab);
feedback names an entity that entry showed. Feedback through the API is bound
to whoever got the recommendation (:meth:`AuditLog.record_feedback`), and each
(recommendation, entity, outcome) is stored once. Erasure (GDPR art. 17) deletes an entity's feedback and
replaces its id in the audit log by anonymous tokens, a new one for each entry
(:meth:`AuditLog.pseudonymise`).

Each entry also keeps the request as the engine read it (``request``, its text included), so that a
learned ranker can be trained on the feedback it got (:meth:`AuditLog.feedback_events`: one event per
entity shown with the rank it was shown at); erasure replaces the erased entity's id, name and contact
data in it too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Text, cast, delete, exists, insert, or_, select, update

from matcher.domain.messages import alternatives, quoted
from matcher.errors import UnknownEntityError, ValidationError
from matcher.store.db import Database, chunks, now, utc
from matcher.store.request_vectors import RequestVectors
from matcher.store.tables import audit_log, feedback

__all__ = ["ERASED_PREFIX", "OUTCOMES", "AuditLog", "erased_token"]

OUTCOMES = ("accepted", "declined", "contacted")
ERASED_PREFIX = "gelöscht-"


def erased_token() -> str:
    """A random stand-in for an erased id: cannot be traced back to it, or linked to another one."""
    return ERASED_PREFIX + secrets.token_hex(8)


class AuditLog:
    """Audit entries, feedback and who has contacted whom (one transaction a call)."""

    def __init__(self, db: Database):
        self.db = db

    # -- audit
    def record(self, *, task: str, query: dict[str, Any], shown: Sequence[str], model_id: str,
               catalog_version: int, role: str, key_id: str | None = None,
               asker_id: str | None = None, recommendation_id: str | None = None, tab: str | None = None,
               request: dict[str, Any] | None = None,
               request_vector: tuple[str, np.ndarray] | None = None) -> str:
        """Write one audit entry for a recommendation served; return its id (for feedback). ``tab``: an
        opaque id of the anonymous caller's browser tab (a hash, never the token itself); ``request``: the
        query as the engine read it (JSON, by alias), kept for learning from the feedback;
        ``request_vector``: (embedding model id, vector) of the request's text as the engine computed it,
        kept in the same transaction (:mod:`matcher.store.request_vectors`; ignored without a text)."""
        rec_id = recommendation_id or f"rec_{uuid.uuid4().hex}"
        at = now()
        with self.db.write() as conn:
            conn.execute(insert(audit_log).values(
                recommendation_id=rec_id, created_at=at, key_id=key_id, role=role, task=task,
                asker_id=asker_id, query=query, shown=list(shown), model_id=model_id,
                catalog_version=catalog_version, tab=tab, request=request))
            text = (request or {}).get("text")
            if request_vector is not None and isinstance(text, str) and text:
                RequestVectors(self.db).put(conn, request_vector[0], text, request_vector[1], at)
        return rec_id

    def entry(self, recommendation_id: str) -> dict[str, Any] | None:
        """One audit entry by its recommendation id (``None``: unknown)."""
        with self.db.read() as conn:
            row = conn.execute(select(audit_log).where(audit_log.c.recommendation_id == recommendation_id)
                               ).mappings().first()
        return None if row is None else {**row, "created_at": utc(row["created_at"])}

    def feedback_events(self, since: dt.datetime | None = None, until: dt.datetime | None = None,
                        batch: int = 2000) -> Iterator[dict[str, Any]]:
        """The feedback on recommendations served in [``since``, ``until``), as training events, oldest
        first: for every entry with a stored request and at least one feedback row, one event per
        feedback row, and one event with outcome ``"shown"`` for each entity shown that got none (what
        was looked past). Each event is a dict with the fields of
        :class:`matcher.learning.feedback.FeedbackEvent`: ``recommendation_id``, ``task``, ``query`` (the
        stored request), ``asker`` (the asking entity's id, or None), ``entity_id``, ``outcome``, ``rank``
        (1-based, as shown),
        ``created_at`` (of the feedback; of the entry for ``"shown"``).
        """
        has_feedback = exists().where(feedback.c.recommendation_id == audit_log.c.recommendation_id)
        q = (select(audit_log.c.id, audit_log.c.recommendation_id, audit_log.c.task, audit_log.c.request,
                    audit_log.c.asker_id, audit_log.c.shown, audit_log.c.created_at)
             .where(audit_log.c.request.is_not(None), has_feedback).order_by(audit_log.c.id))
        if since is not None:
            q = q.where(audit_log.c.created_at >= since)
        if until is not None:
            q = q.where(audit_log.c.created_at < until)
        last = 0
        while True:
            with self.db.read() as conn:
                entries = conn.execute(q.where(audit_log.c.id > last).limit(batch)).all()
                ids = [e.recommendation_id for e in entries]
                rows: dict[str, list[Any]] = {}
                for part in chunks(ids):
                    for f in conn.execute(select(feedback.c.recommendation_id, feedback.c.entity_id,
                                                 feedback.c.outcome, feedback.c.created_at)
                                          .where(feedback.c.recommendation_id.in_(part)).order_by(feedback.c.id)):
                        rows.setdefault(f.recommendation_id, []).append(f)
            if not entries:
                return
            for e in entries:
                ranks = {entity: r for r, entity in enumerate(e.shown, start=1)}
                base = {"recommendation_id": e.recommendation_id, "task": e.task, "query": e.request,
                        "asker": e.asker_id}
                answered = set()
                for f in rows.get(e.recommendation_id, []):
                    if f.entity_id in ranks:
                        answered.add(f.entity_id)
                        yield {**base, "entity_id": f.entity_id, "outcome": f.outcome, "rank": ranks[f.entity_id],
                               "created_at": utc(f.created_at)}
                for entity, rank in ranks.items():
                    if entity not in answered:
                        yield {**base, "entity_id": entity, "outcome": "shown", "rank": rank,
                               "created_at": utc(e.created_at)}
            last = entries[-1].id

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit entries (for staff and tests)."""
        with self.db.read() as conn:
            rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).mappings().all()
        return [{**r, "created_at": utc(r["created_at"])} for r in rows]

    # -- feedback
    def add_feedback(self, recommendation_id: str, entity_id: str, outcome: str, key_id: str | None = None) -> int:
        """Record what became of one recommended entity, for a trusted caller (command line, tests: not
        bound to whoever got the recommendation); return the feedback id (the existing one for a repeat).

        Raises :class:`UnknownEntityError` for an unknown recommendation and
        :class:`ValidationError` when the entity was not part of it.
        """
        return self._feedback(recommendation_id, entity_id, outcome, key_id, None, bound=False)[0]

    def record_feedback(self, recommendation_id: str, entity_id: str, outcome: str, *, key_id: str | None,
                        tab: str | None) -> tuple[int, bool]:
        """Feedback from the caller that got the recommendation: the same API key (``key_id``), or without
        a key the same browser tab (``tab``, as given to :meth:`record`). Return the feedback id and
        whether it is new (a repeated identical post returns the row stored first).

        Raises:
            UnknownEntityError: unknown recommendation, or one issued to another key or tab (the same
                answer: whether it exists is not revealed).
            ValidationError: the entity was not part of it, or an unknown outcome.
        """
        return self._feedback(recommendation_id, entity_id, outcome, key_id, tab, bound=True)

    def _feedback(self, recommendation_id: str, entity_id: str, outcome: str, key_id: str | None,
                  tab: str | None, bound: bool) -> tuple[int, bool]:
        if outcome not in OUTCOMES:
            raise ValidationError(f"Unbekanntes Ergebnis {quoted(outcome)}; erlaubt: {alternatives(OUTCOMES)}",
                                  [{"field": "outcome", "value": outcome}])
        unknown = UnknownEntityError(f"Unbekannte Empfehlung {quoted(recommendation_id)}",
                                     [{"field": "recommendation_id", "value": recommendation_id}])
        with self.db.write() as conn:
            entry = conn.execute(select(audit_log.c.shown, audit_log.c.key_id, audit_log.c.tab)
                                 .where(audit_log.c.recommendation_id == recommendation_id)).first()
            if entry is None or (bound and not _same_caller(entry.key_id, entry.tab, key_id, tab)):
                raise unknown
            if entity_id not in entry.shown:
                raise ValidationError(f"{quoted(entity_id)} war nicht Teil der Empfehlung {quoted(recommendation_id)}",
                                      [{"field": "entity_id", "value": entity_id}])
            # stored once per (recommendation, entity, outcome): a repeat (or a concurrent twin) inserts nothing
            # (the inserted id, not rowcount: PostgreSQL's driver reports -1 for an INSERT … RETURNING)
            fid = conn.execute(self.db.insert_ignore(feedback).values(
                recommendation_id=recommendation_id, entity_id=entity_id, outcome=outcome, key_id=key_id,
                created_at=now()).returning(feedback.c.id)).scalar()
            if fid is not None:
                return int(fid), True
            fid = conn.scalar(select(feedback.c.id).where(feedback.c.recommendation_id == recommendation_id,
                                                          feedback.c.entity_id == entity_id,
                                                          feedback.c.outcome == outcome))
            return int(fid), False

    def contacted_pairs(self) -> set[tuple[str, str]]:
        """(asker, entity) pairs with "contacted" feedback: they know each other already. Only feedback
        from the API key that got the recommendation counts: anonymous feedback (the open demo) and
        feedback from another key never change what the landscape proposes."""
        q = (select(audit_log.c.asker_id, feedback.c.entity_id)
             .join(audit_log, audit_log.c.recommendation_id == feedback.c.recommendation_id)
             .where(feedback.c.outcome == "contacted", audit_log.c.asker_id.is_not(None),
                    feedback.c.key_id.is_not(None), feedback.c.key_id == audit_log.c.key_id).distinct())
        with self.db.read() as conn:
            return {(a, b) for a, b in conn.execute(q)}

    def feedback_for(self, entity_id: str) -> list[dict[str, Any]]:
        """Every feedback row on ``entity_id``."""
        with self.db.read() as conn:
            return [dict(r) for r in conn.execute(select(feedback).where(feedback.c.entity_id == entity_id)).mappings()]

    # -- erasure, in a transaction the caller holds
    @staticmethod
    def delete_feedback(conn: Connection, entity_id: str) -> int:
        """Delete the feedback on ``entity_id``; return how many rows went."""
        return conn.execute(delete(feedback).where(feedback.c.entity_id == entity_id)).rowcount

    @staticmethod
    def pseudonymise(conn: Connection, entity_id: str, strings: Sequence[str] = (),
                     redacted_texts: list[str] | None = None) -> int:
        """Replace ``entity_id`` in the audit log (asker, shown, query, request) by a random token, a new
        one for each entry (one token for all would link the entries again), and its name and contact
        data (``strings``) in stored request texts by „gelöschter Eintrag“; return how many changed.
        ``redacted_texts``: the request texts as they were before a name was replaced are appended to it
        (their stored vectors must go too)."""
        names = [re.compile(rf"(?<!\w){re.escape(s)}(?!\w)", re.IGNORECASE)
                 for s in sorted(strings, key=len, reverse=True)]
        matches = [audit_log.c.asker_id == entity_id, cast(audit_log.c.shown, Text).like(f'%"{entity_id}"%'),
                   cast(audit_log.c.query, Text).like(f'%"{entity_id}"%'),
                   cast(audit_log.c.request, Text).like(f'%"{entity_id}"%')]
        # the request text may name the entity: as stored (PostgreSQL) or JSON-escaped (SQLite); the
        # patterns only preselect, the names are matched as whole words below
        for s in strings:
            for form in {s, json.dumps(s)[1:-1]}:
                like = form.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                matches.append(cast(audit_log.c.request, Text).ilike(f"%{like}%", escape="\\"))
        rows = conn.execute(select(audit_log.c.id, audit_log.c.asker_id, audit_log.c.query, audit_log.c.shown,
                                   audit_log.c.request).where(or_(*matches))).all()
        changed = 0
        for row_id, asker, query, shown, request in rows:
            token = erased_token()
            new_shown = [token if s == entity_id else s for s in shown]
            new_query = {k: (token if v == entity_id else v) for k, v in (query or {}).items()}
            new_request = _redacted_request(request, entity_id, token, names)
            if new_shown == shown and new_query == query and new_request == request and asker != entity_id:
                continue  # the LIKE pattern ('_' is a wildcard) matched another id, or no name was found
            if redacted_texts is not None and request and new_request and \
                    request.get("text") != new_request.get("text"):
                redacted_texts.append(request["text"])
            conn.execute(update(audit_log).where(audit_log.c.id == row_id).values(
                shown=new_shown, query=new_query, request=new_request,
                asker_id=token if asker == entity_id else asker))
            changed += 1
        return changed


def _redacted_request(request: dict[str, Any] | None, entity_id: str, token: str,
                      names: Sequence[re.Pattern[str]]) -> dict[str, Any] | None:
    """A stored request without the erased entity: its id as ``token``, its names in the text replaced."""
    if request is None:
        return None
    out = {k: (token if v == entity_id else v) for k, v in request.items()}
    if isinstance(out.get("text"), str):
        for p in names:
            out["text"] = p.sub("gelöschter Eintrag", out["text"])
    return out


def _same_caller(got_key: str | None, got_tab: str | None, key_id: str | None, tab: str | None) -> bool:
    """Whether a caller (``key_id`` or, without a key, ``tab``) is the one a recommendation went to."""
    if key_id is not None:
        return got_key == key_id
    return got_key is None and got_tab is not None and got_tab == tab
