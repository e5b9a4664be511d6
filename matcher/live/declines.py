"""Feedback that changes what one asker is shown: „passt nicht“ lowers a candidate for that asker's
similar needs (:mod:`matcher.engine.demotion`), „passt“ or „kontaktiert“ lifts it again.

The decline is kept with the vector of the need it was said for, read again from the request the audit
entry keeps (:mod:`matcher.store.audit`); who asked is the asking entity, else the API key, else the
anonymous browser tab (:func:`matcher.store.asker_of`).
"""

from __future__ import annotations

import logging

from matcher.domain.schema import Query
from matcher.engine.demotion import Decline
from matcher.engine.matcher import Matcher
from matcher.errors import MatcherError
from matcher.store import Store, asker_of

__all__ = ["declines_for", "remember_outcome"]

log = logging.getLogger(__name__)


def declines_for(store: Store, matcher: Matcher, query: Query, key_id: str | None, tab: str | None) -> list[Decline]:
    """The asker's declines for the query's task (with the matcher's embedding model)."""
    asker = asker_of(query.from_, key_id, tab)
    if asker is None:
        return []
    return [Decline(e, v) for e, v in store.declines.of(asker, query.task, matcher.model_id)]


def remember_outcome(store: Store, matcher: Matcher, recommendation_id: str, entity_id: str, outcome: str) -> bool:
    """After feedback: keep a „passt nicht“ (``declined``) with its need's vector, or lift the asker's
    earlier declines of the entity on „passt“ / „kontaktiert“. Return whether a decline was kept.

    A request the audit entry no longer holds (older than the request column) or that cannot be read
    again (its asker was deleted since) keeps nothing: the feedback itself is stored all the same.
    """
    entry = store.audit.entry(recommendation_id)
    if entry is None:
        return False
    asker = asker_of(entry["asker_id"], entry["key_id"], entry["tab"])
    if asker is None:
        return False
    if outcome != "declined":
        store.declines.lift(asker=asker, task=entry["task"], entity_id=entity_id)
        return False
    if not entry.get("request"):
        return False
    try:
        query = Query.model_validate(entry["request"])
        vector = matcher.need_vector(query, as_of=query.as_of)
    except (MatcherError, ValueError):
        log.info("decline of %s on %s not kept: its request cannot be read again", entity_id, recommendation_id)
        return False
    store.declines.add(asker=asker, task=entry["task"], entity_id=entity_id, recommendation_id=recommendation_id,
                       model_id=matcher.model_id, vector=vector)
    return True
